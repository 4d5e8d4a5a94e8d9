"""A deadline that no shutdown of the processor can outlast.

Quix closes its Kafka consumer on the way out of `Application.run`. After an error inside a
partition assignment (a state store that cannot be opened or recovered, say) librdkafka's
close waits for a rebalance that never completes: the process hangs, ignores SIGTERM, and an
orchestrator sees it alive. So every stop, graceful or failed, arms a deadline; a process
still running when it expires logs why and ends itself with exit code 1, which an
orchestrator reports and restarts.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Final

from quixstreams import Application

logger = logging.getLogger(__name__)

EXIT_STUCK: Final = 1


class StopDeadline:
    """Ends the process if it has not exited `seconds` after a stop began.

    `describe` turns the error that stopped processing (None for a graceful stop) into the
    one line logged when the deadline expires."""

    def __init__(
        self,
        failed_seconds: float,
        graceful_seconds: float,
        describe: Callable[[BaseException | None], str],
    ) -> None:
        self._failed_seconds = failed_seconds
        self._graceful_seconds = graceful_seconds
        self._describe = describe
        self._disarmed = threading.Event()
        self._armed = threading.Lock()
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
        if failed:
            logger.error(self._describe(error))
        logger.error("the processor did not stop within %.0f s; exiting", seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_STUCK)


class BoundedStopApplication(Application):
    """A Quix `Application` whose every stop arms a `StopDeadline`."""

    def __init__(self, *args: Any, deadline: StopDeadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def stop(self, fail: bool = False) -> None:
        # Quix calls stop(fail=True) while the error that ended processing is being handled.
        self._deadline.arm(sys.exception() if fail else None, failed=fail)
        super().stop(fail)
