"""The stop deadline under stops that arrive on top of each other, without Kafka."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from login_stream.shutdown import StopDeadline

# Far beyond the test: the deadline must never end the test process.
NEVER_SECONDS = 3600.0
JOIN_SECONDS = 5.0


def test_a_second_stop_arriving_inside_the_first_ones_arming_does_not_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second SIGTERM runs its handler in the main thread at any bytecode, also while the
    first handler is inside `arm` creating the deadline's thread."""
    deadline = StopDeadline(NEVER_SECONDS, NEVER_SECONDS, describe=lambda _error: "")
    real_thread = threading.Thread
    interrupted = threading.Event()

    class InterruptedThread(real_thread):  # type: ignore[valid-type,misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if not interrupted.is_set():
                interrupted.set()
                deadline.arm(None, failed=False)  # the second stop, as a signal handler
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(threading, "Thread", InterruptedThread)
    first_stop = real_thread(target=deadline.arm, args=(None, False), daemon=True)
    try:
        first_stop.start()
        first_stop.join(JOIN_SECONDS)
        assert interrupted.is_set()
        assert not first_stop.is_alive(), "the second stop hung inside the first"
    finally:
        deadline.disarm()
