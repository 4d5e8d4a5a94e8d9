"""The stop deadline under stops that arrive on top of each other, and what ends a stop, without
Kafka."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from quixstreams import Application
from quixstreams.exceptions import PartitionAssignmentError

from login_stream.application import build_application
from login_stream.quix_internals import AssignmentAtClose, refused_at_close
from login_stream.settings import load_settings
from login_stream.shutdown import BoundedStopApplication, StopDeadline

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


# What Quix raises from a close that refused an assignment (`tests/test_shutdown_kafka.py`
# shows the real one).
def _refused_at_close() -> PartitionAssignmentError:
    try:
        raise PartitionAssignmentError("Error during partition assignment") from (
            AssignmentAtClose("1 partition(s) assigned during the close")
        )
    except PartitionAssignmentError as wrapped:
        return wrapped


@pytest.fixture
def closing_with_an_assignment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> BoundedStopApplication:
    """The processor's application, whose Quix run ends in a close that refused an assignment."""

    def run_ending_in_a_refused_assignment(_app: Application, *_args: Any, **_kwargs: Any) -> None:
        raise _refused_at_close()

    monkeypatch.setattr(Application, "run", run_ending_in_a_refused_assignment)
    monkeypatch.setattr(Application, "stop", lambda _app, fail=False: None)
    settings = load_settings(state_dir=tmp_path)
    app = build_application(settings, StopDeadline(NEVER_SECONDS, NEVER_SECONDS, str))
    assert isinstance(app, BoundedStopApplication)
    return app


def test_an_assignment_refused_at_the_close_after_a_requested_stop_ends_the_run_cleanly(
    closing_with_an_assignment: BoundedStopApplication, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="login_stream.shutdown")
    closing_with_an_assignment.stop()
    assert closing_with_an_assignment.run() is None
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.INFO, "a partition assignment arrived as the processor stopped; left unread")
    ]


def test_after_a_failure_the_run_raises_that_failure_not_the_refused_assignment(
    closing_with_an_assignment: BoundedStopApplication,
) -> None:
    failure = ValueError("a record no step could handle")
    try:
        raise failure
    except ValueError:
        closing_with_an_assignment.stop(fail=True)  # as Quix does, handling the error
    with pytest.raises(ValueError) as raised:
        closing_with_an_assignment.run()
    assert raised.value is failure


def test_a_failure_found_outside_processing_is_raised_though_the_close_refused_an_assignment(
    closing_with_an_assignment: BoundedStopApplication,
) -> None:
    lost = RuntimeError("brokers lost")
    closing_with_an_assignment.fail(lost)
    with pytest.raises(RuntimeError) as raised:
        closing_with_an_assignment.run()
    assert raised.value is lost


def test_only_the_refusal_itself_or_an_error_it_caused_reads_as_refused_at_close() -> None:
    assert refused_at_close(_refused_at_close())
    assert refused_at_close(AssignmentAtClose())
    try:
        raise PartitionAssignmentError("Error during partition assignment") from ValueError()
    except PartitionAssignmentError as other:
        assert not refused_at_close(other)
