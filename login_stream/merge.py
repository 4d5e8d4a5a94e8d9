"""The merge rule of the second stage, as plain functions on plain data.

The first stage counts each input partition on its own and, for every interval that closes
there, sends a *partial*: that partition's counts of the interval. The merge sums the partials
of an interval into the one global summary once every partition of the input topic has
reported it, adds it to the running totals, and publishes it.

* *Reported until.* Each partition closes its intervals in order, so a partial for the
  interval ending at `end_ms` says: this partition has nothing more to report before `end_ms`.
  An interval in which a partition had no record at all (it was idle, or no processor ran)
  simply gets no partial from it; the partition's next partial covers that time too.
* *Complete.* An interval is complete when every partition has reported until its end or
  later. Complete intervals are published in order, with zero summaries for the intervals
  between them that no partition had anything for, so the series has no holes.
* *Held back.* Until then it waits: a partition whose processor is gone holds the merge back,
  and its summaries come late, never wrong. `waiting_for` names those partitions.
* *Duplicate.* A partial for an interval its partition has already reported changes nothing.
* *Very late.* A partial for an interval already published (possible only after partitions
  were added to the input topic) is counted, like a late event, in the next interval:
  logins and late messages as late, invalid ones as invalid. Totals stay exact.

The merge keeps a small state (which partitions reported how far, the running totals, the
starts of the pending intervals) and the counts of each pending interval apart, in a
`PendingIntervals` store: in the processor one Quix state key per interval, so a partial
costs the same however far one partition trails the others. Partitions are keys in text
form, because the state is JSON.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any, Protocol, TypedDict

from .aggregation import Counts, add_counts, closing_summaries, empty_counts

logger = logging.getLogger(__name__)


class Partial(TypedDict):
    """One input partition's counts of one closed interval."""

    partition: int
    # Partitions of the input topic, as the first stage saw it.
    partitions: int
    start_ms: int
    end_ms: int
    counts: Counts


class MergeState(TypedDict):
    partitions: int
    duration_ms: int
    # Partition -> end of the latest interval it has reported.
    reported_until: dict[str, int]
    # Starts of the intervals with partials not yet published, in order.
    pending_starts: list[int]
    totals: Counts
    last_end_ms: int | None


class PendingIntervals(Protocol):
    """The summed partials of each pending interval, by interval start."""

    def get(self, start_ms: int) -> Counts | None: ...

    def put(self, start_ms: int, counts: Counts) -> None: ...

    def delete(self, start_ms: int) -> None: ...


class InMemoryPending:
    """`PendingIntervals` in a dict."""

    def __init__(self) -> None:
        self.intervals: dict[int, Counts] = {}

    def get(self, start_ms: int) -> Counts | None:
        return self.intervals.get(start_ms)

    def put(self, start_ms: int, counts: Counts) -> None:
        self.intervals[start_ms] = counts

    def delete(self, start_ms: int) -> None:
        del self.intervals[start_ms]


def empty_merge_state() -> MergeState:
    return {
        "partitions": 0,
        "duration_ms": 0,
        "reported_until": {},
        "pending_starts": [],
        "totals": empty_counts(),
        "last_end_ms": None,
    }


def merge_partial(
    state: MergeState, pending: PendingIntervals, partial: Partial
) -> list[dict[str, Any]]:
    """Take in one partial, updating `state` and `pending`; returns the summaries now
    complete, in order."""
    partition = str(partial["partition"])
    state["partitions"] = max(state["partitions"], partial["partitions"], partial["partition"] + 1)
    state["duration_ms"] = partial["end_ms"] - partial["start_ms"]
    reported = state["reported_until"].get(partition)
    if reported is not None and partial["end_ms"] <= reported:
        logger.warning(
            "ignoring a second partial of partition %s for the interval ending at %d",
            partition,
            partial["end_ms"],
        )
        return []
    last_end_ms = state["last_end_ms"]
    if last_end_ms is not None and partial["end_ms"] <= last_end_ms:
        logger.warning(
            "partition %s reported the interval %d-%d after it was published; "
            "counting its messages as late in the next interval",
            partition,
            partial["start_ms"],
            partial["end_ms"],
        )
        _add_pending(state, pending, last_end_ms, as_late(partial["counts"]))
    else:
        _add_pending(state, pending, partial["start_ms"], partial["counts"])
    state["reported_until"][partition] = partial["end_ms"]
    return _publish_complete(state, pending)


def waiting_for(state: MergeState) -> list[int]:
    """The partitions that have not yet reported the oldest pending interval."""
    if not state["pending_starts"]:
        return []
    oldest_end = state["pending_starts"][0] + state["duration_ms"]
    return [
        partition
        for partition in range(state["partitions"])
        if state["reported_until"].get(str(partition), oldest_end - 1) < oldest_end
    ]


def as_late(counts: Counts) -> Counts:
    """Counts of messages that arrived after their interval was published."""
    late = empty_counts()
    late["late"] = counts["messages"] + counts["late"]
    late["invalid"] = counts["invalid"]
    return late


def _add_pending(
    state: MergeState, pending: PendingIntervals, start_ms: int, counts: Counts
) -> None:
    earlier = pending.get(start_ms)
    if earlier is None:
        bisect.insort(state["pending_starts"], start_ms)
        pending.put(start_ms, counts)
    else:
        pending.put(start_ms, add_counts(earlier, counts))


def _publish_complete(state: MergeState, pending: PendingIntervals) -> list[dict[str, Any]]:
    reported = [state["reported_until"].get(str(p)) for p in range(state["partitions"])]
    if any(until is None for until in reported):
        return []
    complete_until = min(until for until in reported if until is not None)
    summaries: list[dict[str, Any]] = []
    starts = state["pending_starts"]
    while starts and starts[0] + state["duration_ms"] <= complete_until:
        start = starts.pop(0)
        end = start + state["duration_ms"]
        counts = pending.get(start) or empty_counts()
        pending.delete(start)
        published, state["totals"] = closing_summaries(
            state["totals"], state["last_end_ms"], start, end, counts
        )
        summaries.extend(published)
        state["last_end_ms"] = end
    return summaries
