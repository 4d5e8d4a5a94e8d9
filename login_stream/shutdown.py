"""A deadline that no shutdown of the processor can outlast.

Quix closes its Kafka consumer on the way out of `Application.run`. After an error inside a
partition assignment (a state store that cannot be opened or recovered, say) librdkafka's
close waits for a rebalance that never completes: the process hangs, ignores SIGTERM, and an
orchestrator sees it alive. So every stop, graceful or failed, arms a deadline; a process
still running when it expires logs why and ends itself with exit code 1, which an
orchestrator reports and restarts. A stop signal arms it from a thread of its own, so a main
thread blocked inside the Kafka client cannot hold it up (`arm_on_stop_signals`).

A stop request must also not get lost. Quix marks itself running only once its consumer is
set up, which takes a second or more, and that mark overwrites a stop that arrived meanwhile
(also one from its own SIGTERM handler). So a stop, once requested, is repeated until `run`
has returned. And a stop requested before the application exists is kept (`StopRequests`)
and applied to it as soon as it does.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

from quixstreams import Application

from .quix_internals import refuse_assignments_at_close, refused_at_close

logger = logging.getLogger(__name__)

EXIT_STUCK: Final = 1
STOP_REPEAT_SECONDS: Final = 0.05
SIGNAL_READ_BYTES: Final = 64


class StopDeadline:
    """Ends the process if it has not exited `seconds` after a stop began.

    `describe` turns the error that stopped processing (None for a graceful stop) into the
    one line logged when the deadline expires; `before_exit` gets the line that says why the
    process ends (to report it) just before it does."""

    def __init__(
        self,
        failed_seconds: float,
        graceful_seconds: float,
        describe: Callable[[BaseException | None], str],
        before_exit: Callable[[str], None] = lambda _reason: None,
    ) -> None:
        self._before_exit = before_exit
        self._failed_seconds = failed_seconds
        self._graceful_seconds = graceful_seconds
        self._describe = describe
        self._disarmed = threading.Event()
        # Re-entrant: a second SIGTERM runs its handler in the main thread, possibly while
        # the first one's is inside `arm`; a plain lock would hang the process for good.
        self._armed = threading.RLock()
        self._thread: threading.Thread | None = None

    def arm(self, error: BaseException | None, failed: bool) -> None:
        with self._armed:
            if self._thread is not None and not failed:
                return  # the first stop's deadline stands; a failure shortens it below
            seconds = self._failed_seconds if failed else self._graceful_seconds
            self._thread = threading.Thread(
                target=self._expire,
                args=(seconds, error, failed),
                name="login-stream-stop-deadline",
                daemon=True,
            )
            self._thread.start()

    def disarm(self) -> None:
        self._disarmed.set()

    def _expire(self, seconds: float, error: BaseException | None, failed: bool) -> None:
        if self._disarmed.wait(seconds):
            return
        reason = f"the processor did not stop within {seconds:.0f} s; exiting"
        if failed:
            cause = self._describe(error)
            logger.error(cause)
            reason = cause
        self.end_now(f"the processor did not stop within {seconds:.0f} s; exiting", reason)

    def end_now(self, line: str, reason: str | None = None) -> None:
        """Log `line` and end the process at once with EXIT_STUCK, from any thread: for a
        main thread that cannot be waited for. `reason` (default: `line`) is reported."""
        logger.error("%s", line)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._before_exit(reason or line)
        os._exit(EXIT_STUCK)


def arm_on_stop_signals(deadline: StopDeadline) -> None:
    """Arm `deadline` on every SIGTERM and SIGINT from a thread of its own.

    Python runs signal handlers in the main thread only, between two bytecodes: a main thread
    blocked inside the Kafka client (librdkafka's `send_offsets_to_transaction` can wait
    without a timeout when a group coordinator goes away) would never run them, and the stop
    would be lost. The C-level handler still writes each signal's number to the wakeup file
    descriptor, which this thread reads. The handlers in Python still do the graceful stop.
    """
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    stops = {signal.SIGTERM.value, signal.SIGINT.value}

    def watch() -> None:
        while True:
            if stops.intersection(os.read(read_fd, SIGNAL_READ_BYTES)):
                deadline.arm(None, failed=False)

    threading.Thread(target=watch, name="login-stream-stop-signals", daemon=True).start()


class BoundedStopApplication(Application):
    """A Quix `Application` whose every stop arms a `StopDeadline` and holds until `run`
    has returned."""

    def __init__(self, *args: Any, deadline: StopDeadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        self._finished = threading.Event()
        # Re-entrant for the same reason as `StopDeadline._armed`.
        self._stopping = threading.RLock()
        self._repeater: threading.Thread | None = None
        self._failure: Exception | None = None
        self._failed_with: BaseException | None = None
        self._stop_failed = False
        refuse_assignments_at_close(self)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        refusal: Exception | None = None
        try:
            result = super().run(*args, **kwargs)
        except Exception as error:
            if not refused_at_close(error):
                raise
            refusal, result = error, None
        finally:
            self._finished.set()
        # Raised here, outside the handler, so that each error keeps its own chain of causes.
        if refusal is not None:
            # What stopped processing, as Quix would have raised it without the refusal.
            stopped_by = self._failed_with or self._failure
            if stopped_by is not None:
                raise stopped_by
            if self._stop_failed:
                raise refusal
            # The loop ended on a requested stop, and nothing of the assignment was read.
            logger.info("a partition assignment arrived as the processor stopped; left unread")
        if self._failure is not None:
            raise self._failure
        return result

    def stop(self, fail: bool = False) -> None:
        # Quix calls stop(fail=True) while the error that ended processing is being handled.
        if fail:
            self._stop_failed = True
            self._failed_with = self._failed_with or sys.exception()
        self._deadline.arm(sys.exception() if fail else None, failed=fail)
        super().stop(fail)
        self._repeat_until_finished()

    def fail(self, error: Exception) -> None:
        """Stop processing because of `error` found outside of it (any thread): nothing is
        committed on the way out, and `run` raises `error`."""
        self._failure = error
        self._stop_failed = True
        self._deadline.arm(error, failed=True)
        super().stop(fail=True)
        self._repeat_until_finished()

    def _repeat_until_finished(self) -> None:
        with self._stopping:
            if self._repeater is None:
                self._repeater = threading.Thread(
                    target=self._repeat_stop, name="login-stream-stop", daemon=True
                )
                self._repeater.start()

    def _repeat_stop(self) -> None:
        while not self._finished.wait(STOP_REPEAT_SECONDS):
            super().stop()


class StopRequests:
    """The processor's SIGTERM and SIGINT handler until Quix installs its own, and after.

    It only records the request and passes it to the application once there is one: an
    exception raised from a signal handler could land inside a callback of the Kafka client
    and be swallowed there."""

    def __init__(self) -> None:
        self.requested = False
        self._app: Application | None = None

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self._app is not None:
            self._app.stop()

    def attach(self, app: Application) -> None:
        self._app = app
        if self.requested:
            app.stop()
