"""Placing records in time, per input partition: the first stage's clock.

Every record gets the time that places it in an interval (`at_ms`), judged against the
latest time the partition has seen (its *watermark*) by three rules:

* *On time.* A record whose interval is still open keeps its own time.
* *Late.* A record whose interval has closed is re-placed at the watermark, in the interval
  open now (a login becomes a late record): Quix's window would drop it with a log line.
* *Future.* A record stamped further ahead of the processor's clock than
  `FUTURE_TOLERANCE_SECONDS` never moves the partition's time: it is re-placed at the
  watermark (a login becomes an invalid record with the reason `future`). Trusted, one
  producer with a wrong clock would close every interval up to its time at once and make
  every honest event after it late.

The watermark is the greatest `at_ms` placed so far, which is the latest timestamp the window
itself keeps for the partition's key: every placed record goes on to the window, which
stores its time in the same checkpoint. So the step reads the window's time (see
`quix_internals.window_time`) rather than keeping a copy in a store of its own, which cost a
state read per record.

The step also notes the *bounds* of each record's step through the window: up to which
interval end the partition's intervals had closed before the record, and up to which they
have closed after it (`aggregation.closed_until`). The window closes the intervals between
the two while it processes that same record, so the partials it sends carry these bounds to
the merge, which needs them because the window hands several intervals closed at once back
in no particular order (see `merge`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from quixstreams import message_context
from quixstreams.models import MessageContext

from .aggregation import MILLIS_PER_SECOND, closed_until, is_closed, placement_time
from .events import Record, placed_future, placed_late
from .merge import Partial
from .topics import check_partition_known

logger = logging.getLogger(__name__)

# A stream of records from a clock far ahead would otherwise log one line each.
FUTURE_LOG_SECONDS: Final = 10.0


@dataclass(frozen=True)
class StepBounds:
    """The record a step belongs to, and the interval ends its closing lies between."""

    source: tuple[str, int, int]
    closed_before_ms: int | None
    closed_until_ms: int


class Placement:
    """The placing step of one processor (`place`), and the bounds of its latest step."""

    def __init__(
        self,
        duration_ms: int,
        grace_ms: int,
        by_event_time: bool,
        future_tolerance_ms: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._duration_ms = duration_ms
        self._grace_ms = grace_ms
        self._by_event_time = by_event_time
        self._future_tolerance_ms = future_tolerance_ms
        self._clock = clock
        # The record that last moved time, with the watermark before and after it: kept as
        # they are, since most records move time and few close an interval (`bounds_of`).
        self._latest_step: tuple[MessageContext, int | None, int] | None = None
        self._future_logged_at = -FUTURE_LOG_SECONDS
        self._future_held_back = 0

    def place(self, record: Record, record_ms: int, watermark_ms: int | None) -> Record:
        """Place `record`, of Kafka timestamp `record_ms`, in its partition whose watermark is
        `watermark_ms` (None before its first record), by the rules in the module docstring.
        The watermark after it is the greater of `watermark_ms` and the returned `at_ms`."""
        if self._by_event_time:
            timestamp_ms = placement_time(record, record_ms, self._grace_ms)
        else:
            timestamp_ms = record_ms
        if watermark_ms is None or timestamp_ms > watermark_ms:
            now_ms = int(self._clock() * MILLIS_PER_SECOND)
            if timestamp_ms - now_ms > self._future_tolerance_ms:
                return self._place_future(record, timestamp_ms, now_ms, watermark_ms)
            self._moved_time(watermark_ms, timestamp_ms)
        elif is_closed(timestamp_ms, watermark_ms, self._duration_ms, self._grace_ms):
            return placed_late(record, watermark_ms)
        record["at_ms"] = timestamp_ms
        return record

    def bounds_of(self, source: tuple[str, int, int]) -> StepBounds | None:
        """The bounds of the step of the record read from `source` (topic, partition,
        offset), if that record moved its partition's time; None otherwise."""
        if self._latest_step is None:
            return None
        context, watermark_ms, timestamp_ms = self._latest_step
        if (context.topic, context.partition, context.offset) != source:
            return None
        return StepBounds(
            source=source,
            closed_before_ms=None
            if watermark_ms is None
            else closed_until(watermark_ms, self._duration_ms, self._grace_ms),
            closed_until_ms=closed_until(timestamp_ms, self._duration_ms, self._grace_ms),
        )

    def _moved_time(self, watermark_ms: int | None, timestamp_ms: int) -> None:
        self._latest_step = (message_context(), watermark_ms, timestamp_ms)

    def _place_future(
        self,
        record: Record,
        timestamp_ms: int,
        now_ms: int,
        watermark_ms: int | None,
    ) -> Record:
        if watermark_ms is None:
            # The partition's first record: its time starts at the processor's clock.
            self._moved_time(None, now_ms)
            at_ms = now_ms
        else:
            at_ms = watermark_ms
        self._log_future(timestamp_ms - now_ms)
        return placed_future(record, at_ms)

    def _log_future(self, ahead_ms: int) -> None:
        now = time.monotonic()
        if now - self._future_logged_at < FUTURE_LOG_SECONDS:
            self._future_held_back += 1
            return
        context = message_context()
        logger.warning(
            "a record of %s[%d] at offset %d is stamped %.1f s ahead of this processor's clock, "
            "beyond FUTURE_TOLERANCE_SECONDS=%g; placed at the partition's current time instead "
            "(a login counts as invalid and is dead-lettered with the reason 'future')%s",
            context.topic,
            context.partition,
            context.offset,
            ahead_ms / MILLIS_PER_SECOND,
            self._future_tolerance_ms / MILLIS_PER_SECOND,
            f"; {self._future_held_back} more since the last such line"
            if self._future_held_back
            else "",
        )
        self._future_logged_at = now
        self._future_held_back = 0


def placed_time(record: Record, _key: Any, _timestamp_ms: int, _headers: Any) -> int:
    return record["at_ms"]


def partial_of_window(window: dict[str, Any], partitions: int, placement: Placement) -> Partial:
    """A window this partition closed, as the partial the merge takes in, with the bounds of
    the step that closed it."""
    context = message_context()
    partition = context.partition
    check_partition_known(partition, partitions)
    step = placement.bounds_of((context.topic, partition, context.offset))
    if step is None:
        # Quix closes windows only while it processes the record that moved time; if that
        # ever changes, the merge still counts exactly, waiting for the next partial.
        logger.error(
            "the interval %d-%d of input partition %d closed on a record that did not move "
            "time; its summary may come one interval later",
            window["start"] // MILLIS_PER_SECOND,
            window["end"] // MILLIS_PER_SECOND,
            partition,
        )
    return {
        "partition": partition,
        "partitions": partitions,
        "start_ms": window["start"],
        "end_ms": window["end"],
        "counts": window["value"],
        "closed_before_ms": None if step is None else step.closed_before_ms,
        "closed_until_ms": None if step is None else step.closed_until_ms,
    }
