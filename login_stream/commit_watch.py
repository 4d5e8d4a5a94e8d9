"""A checkpoint commit that does not return ends the processor.

Quix commits a checkpoint (produce flush, `send_offsets_to_transaction`, commit of the
transaction) on the thread that processes records, with no timeout on the first two. When the
broker coordinating the consumer group goes away at the wrong moment, librdkafka can wait in
`send_offsets_to_transaction` for good, although the group has long moved to a new coordinator
(open librdkafka reports; seen here on a three-broker cluster with a broker killed). Nothing is
processed meanwhile, the processor still looks alive, and only a kill ends it.

So every commit is timed. While one is slow, a WARNING line every `REPORT_SECONDS` says how
long it has waited and where: a commit also waits, for as long as it takes, while fewer
brokers are up than a write needs (`min.insync.replicas`), and catches up once they return.
One that has not returned within COMMIT_STALL_SECONDS turns
readiness and liveness red and ends the process with one line naming the cause, for the
orchestrator to restart it: under exactly-once the open transaction is aborted (fenced by the
restarted instance's `transactional.id`) and the records since the last checkpoint are read
again, so nothing is lost or counted twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from .quix_internals import innermost_calls

logger = logging.getLogger(__name__)

# How often a slow commit is reported: often enough to tell an operator what the processor
# waits for, seldom enough to stay one line per period.
REPORT_SECONDS: Final = 10.0
# How often the watch looks: a fraction of any sensible bound.
CHECK_SECONDS: Final = 1.0
# How many of the committing thread's innermost calls the line names.
WAITING_CALLS_SHOWN: Final = 3


class CommitWatch:
    """Times checkpoint commits (`started`/`finished`, called around each one) and calls
    `on_stuck` with the line to log, once, when one has run longer than `bound_seconds`."""

    def __init__(
        self,
        bound_seconds: float,
        on_stuck: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        check_seconds: float = CHECK_SECONDS,
        report_seconds: float = REPORT_SECONDS,
    ) -> None:
        self._bound_seconds = bound_seconds
        self._report_seconds = report_seconds
        # Periods of the running commit already reported.
        self._reported = 0
        self._on_stuck = on_stuck
        self._clock = clock
        self._check_seconds = check_seconds
        self._since: float | None = None
        # The thread that commits: Quix commits on the one that processes records.
        self._committing: threading.Thread | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="login-stream-commit-watch")
        self._thread.daemon = True

    def started(self) -> None:
        self._committing = threading.current_thread()
        self._reported = 0
        self._since = self._clock()

    def finished(self) -> None:
        self._since = None

    def stuck_line(self) -> str | None:
        """The line that says a commit is stuck, while one has run longer than the bound."""
        since = self._since
        if since is None:
            return None
        running = self._clock() - since
        if running <= self._bound_seconds:
            return None
        return (
            f"a checkpoint commit has not returned for {running:.0f} s (COMMIT_STALL_SECONDS="
            f"{self._bound_seconds:g}), waiting in {self._waiting_in()}; the Kafka client can "
            "wait for good when a coordinator broker goes away; exiting, to be restarted"
        )

    def waiting_line(self) -> str | None:
        """The line that reports a slow commit, once per `report_seconds` it has run (short of
        the bound, past which `stuck_line` speaks)."""
        since = self._since
        if since is None:
            return None
        running = self._clock() - since
        periods = int(running // self._report_seconds)
        if periods <= self._reported or running > self._bound_seconds:
            return None
        self._reported = periods
        return (
            f"a checkpoint commit has waited {running:.0f} s so far, in {self._waiting_in()}: "
            "the brokers have not acknowledged its writes (a broker down, fewer in-sync "
            "replicas than min.insync.replicas) or a coordinator has not answered; nothing is "
            f"published meanwhile, and the processor exits after COMMIT_STALL_SECONDS="
            f"{self._bound_seconds:g}"
        )

    def _waiting_in(self) -> str:
        """Where the committing thread waits: its innermost Python calls, innermost first (a
        call into the C client shows as the Python call that made it)."""
        thread = self._committing
        calls = innermost_calls(thread, WAITING_CALLS_SHOWN) if thread is not None else []
        return " < ".join(calls) or "an unknown call"

    def health(self) -> tuple[bool, str]:
        """For liveness and readiness: red while a commit is stuck."""
        line = self.stuck_line()
        return (False, line) if line else (True, "commits return")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        while not self._stopped.wait(self._check_seconds):
            if waiting := self.waiting_line():
                logger.warning("%s", waiting)
            line = self.stuck_line()
            if line is not None:
                self._on_stuck(line)
                return
