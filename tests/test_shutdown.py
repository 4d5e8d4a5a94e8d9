"""The stop deadline under stops that arrive on top of each other, without Kafka."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
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


# A process whose main thread blocks inside C, as in librdkafka's `pthread_cond_wait`: it
# relocks a mutex it holds, which no signal interrupts, so no Python signal handler ever runs.
BLOCKED_IN_C = """
import ctypes, signal, sys
from login_stream.shutdown import StopDeadline, arm_on_stop_signals

deadline = StopDeadline(5.0, float(sys.argv[1]), describe=lambda _error: "")
signal.signal(signal.SIGTERM, lambda *_args: None)  # a graceful handler, as Quix installs
arm_on_stop_signals(deadline)
libc = ctypes.CDLL(None)
mutex = ctypes.create_string_buffer(64)  # all zeros: PTHREAD_MUTEX_INITIALIZER on glibc
libc.pthread_mutex_lock(mutex)
print("blocked", flush=True)
libc.pthread_mutex_lock(mutex)
"""
SHUTDOWN_SECONDS = 1.0
EXIT_MARGIN_SECONDS = 10.0


def test_a_stop_ends_the_process_in_time_while_its_main_thread_is_blocked_in_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", BLOCKED_IN_C, str(SHUTDOWN_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "blocked\n"
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(SHUTDOWN_SECONDS + EXIT_MARGIN_SECONDS)
        took = time.monotonic() - stopped_at
    finally:
        process.kill()
        _out, err = process.communicate()
    assert code == 1, err
    assert took >= SHUTDOWN_SECONDS, took
    assert "the processor did not stop within 1 s; exiting" in err
