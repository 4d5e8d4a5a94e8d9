"""The merge rule of the second stage, as plain functions on plain data.

The first stage counts each input partition on its own and, for every interval that closes
there, sends a *partial*: that partition's counts of the interval. The merge sums the partials
of an interval into the one global summary once every partition of the input topic has
reported it, adds it to the running totals, and publishes it.

* *Reported until.* Partials of one partition may come in any order within one step of the
  first stage: when one record closes several intervals at once, Quix's window hands them back
  in the order its store keeps them, not in time order. So every partial carries the bounds of
  the step that closed it: `closed_before_ms`, up to which that partition's intervals had
  closed before the step (their partials came earlier, from the same producer into the same
  partials partition), and `closed_until_ms`, up to which they are closed after it. The merge
  takes a partition as reported until `closed_before_ms`, and until `closed_until_ms` once it
  holds a partial for every interval that can end within the step (the usual step closes one).
  Otherwise the step's last intervals wait for the partition's next partial, whose
  `closed_before_ms` covers them. An interval in which a partition had no record at all (it
  was idle, or no processor ran) simply gets no partial from it.
* *Complete.* An interval is complete when every partition has reported until its end or
  later. Complete intervals are published in order, with zero summaries for the intervals
  between them that no partition had anything for, so the series has no holes.
* *Held back.* Until then it waits: a partition whose processor is gone holds the merge back,
  and its summaries come late, never wrong. `waiting_for` names those partitions, and
  `held_back_ms` says how far (the metric `login_stream_merge_held_back_seconds`).
* *Duplicate.* A partial equal to one its partition has already sent for the same interval
  (possible only under at-least-once, replayed after a crash) changes nothing.
* *Misplaced.* Nothing else is ever dropped. A partial for an interval already published
  (possible after partitions were added to the input topic), or a second partial with other
  counts for an interval its partition already reported, is counted like a late event in the
  next interval (logins and late messages as late, invalid ones as invalid), with one ERROR
  line, and counted in `misplaced`. Totals stay exact.

The merge keeps a small state (which partitions reported how far, the running totals, the
starts of the pending intervals) and the counts of each pending interval apart, in a
`PendingIntervals` store: in the processor one Quix state key per interval, so a partial
costs the same however far one partition trails the others. Partitions are keys in text
form, because the state is JSON.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from typing import Any, Final, NotRequired, Protocol, TypedDict

import orjson

from .aggregation import MILLIS_PER_SECOND, Counts, add_counts, closing_summaries, empty_counts
from .metrics import Metrics

logger = logging.getLogger(__name__)

# Where the merge keeps its state, under the one key of the partials.
MERGE_STATE_KEY: Final = "merge"
PENDING_STATE_PREFIX: Final = "pending/"
# How many of a partition's partials are remembered, to tell a replayed one from another.
REMEMBERED_PARTIALS: Final = 64
# A step whose bounds span more intervals than this (a jump in time) is never taken as
# complete from its own partials; the partition's next partial completes it.
MAX_STEP_INTERVALS: Final = 64


class Partial(TypedDict):
    """One input partition's counts of one closed interval."""

    partition: int
    # Partitions of the input topic, as the first stage saw it.
    partitions: int
    start_ms: int
    end_ms: int
    counts: Counts
    # The bounds of the step that closed it (see the module docstring); None when the first
    # stage could not tell them. Partials written before they existed lack both.
    closed_before_ms: NotRequired[int | None]
    closed_until_ms: NotRequired[int | None]


class MergeState(TypedDict):
    partitions: int
    duration_ms: int
    # Partition -> the time up to which every interval of it has been received.
    reported_until: dict[str, int]
    # Partition -> interval end -> fingerprint of the partial received for it (the latest
    # `REMEMBERED_PARTIALS` of each partition).
    received: dict[str, dict[str, str]]
    # Partials counted as late in the next interval instead of their own.
    misplaced: int
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


class KeyValueStore(Protocol):
    """The calls of Quix's `State` the merge makes."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class PendingInState:
    """`PendingIntervals` in Quix state, one key each, so that a partial costs the same
    however far one partition trails the others."""

    def __init__(self, state: KeyValueStore) -> None:
        self._state = state

    def get(self, start_ms: int) -> Counts | None:
        counts: Counts | None = self._state.get(f"{PENDING_STATE_PREFIX}{start_ms}")
        return counts

    def put(self, start_ms: int, counts: Counts) -> None:
        self._state.set(f"{PENDING_STATE_PREFIX}{start_ms}", counts)

    def delete(self, start_ms: int) -> None:
        self._state.delete(f"{PENDING_STATE_PREFIX}{start_ms}")


def merge_in_state(
    partial: Partial, state: KeyValueStore, metrics: Metrics
) -> list[dict[str, Any]]:
    """The merge step of the processor: `merge_partial` on the state Quix keeps for it."""
    merge: MergeState = state.get(MERGE_STATE_KEY) or empty_merge_state()
    pending_before = len(merge["pending_starts"])
    misplaced_before = merge.get("misplaced", 0)
    summaries = merge_partial(merge, PendingInState(state), partial)
    state.set(MERGE_STATE_KEY, merge)
    metrics.partials_misplaced(merge["misplaced"] - misplaced_before)
    metrics.merge_held_back_by(held_back_ms(merge) / MILLIS_PER_SECOND)
    # Normally one interval is pending while the partitions report it; one line for every
    # further interval held back, naming the partitions it waits for.
    if len(merge["pending_starts"]) > max(pending_before, 1):
        logger.warning(
            "summaries from %d held back: waiting for input partitions %s",
            merge["pending_starts"][0] // MILLIS_PER_SECOND,
            waiting_for(merge),
        )
    return summaries


def empty_merge_state() -> MergeState:
    return {
        "partitions": 0,
        "duration_ms": 0,
        "reported_until": {},
        "received": {},
        "misplaced": 0,
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
    # A state saved before partials were remembered has no place for them yet.
    received = state.setdefault("received", {}).setdefault(partition, {})
    end = str(partial["end_ms"])
    fingerprint = fingerprint_of(partial)
    earlier = received.get(end)
    if earlier == fingerprint:
        logger.warning(
            "ignoring a partial of input partition %s for the interval %d-%d: "
            "the same as one already received (sent again after a restart)",
            partition,
            partial["start_ms"],
            partial["end_ms"],
        )
        return []
    last_end_ms = state["last_end_ms"]
    if earlier is not None:
        _count_misplaced(state, pending, partial, "a second partial, with other counts, for")
    elif last_end_ms is not None and partial["end_ms"] <= last_end_ms:
        _count_misplaced(state, pending, partial, "a partial after the publication of")
    else:
        _add_pending(state, pending, partial["start_ms"], partial["counts"])
    received[end] = fingerprint
    _advance_reported(state, partition, partial, received)
    _forget_oldest(received)
    return _publish_complete(state, pending)


def fingerprint_of(partial: Partial) -> str:
    """What tells two partials of one partition and interval apart: their counts."""
    encoded = orjson.dumps(partial["counts"], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(encoded, digest_size=8).hexdigest()


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


def held_back_ms(state: MergeState) -> int:
    """How far the merge holds summaries back: from the start of the oldest interval it holds
    to that of the newest, in event time; 0 while it holds at most one (the usual interval
    whose partials are coming in). It grows by one interval each interval while a partition
    reports nothing and the others go on."""
    starts = state["pending_starts"]
    return starts[-1] - starts[0] if starts else 0


def as_late(counts: Counts) -> Counts:
    """Counts of messages that arrived after their interval was published."""
    late = empty_counts()
    late["late"] = counts["messages"] + counts["late"]
    late["invalid"] = counts["invalid"]
    return late


def _count_misplaced(
    state: MergeState, pending: PendingIntervals, partial: Partial, what: str
) -> None:
    """Count `partial` as late in the next interval to be published: it cannot be placed in
    its own."""
    last_end_ms = state["last_end_ms"]
    next_start = partial["start_ms"] if last_end_ms is None else last_end_ms
    logger.error(
        "input partition %d sent %s the interval %d-%d; its %d logins, %d late and %d invalid "
        "messages are counted in the interval from %d as late (and invalid)",
        partial["partition"],
        what,
        partial["start_ms"],
        partial["end_ms"],
        partial["counts"]["messages"],
        partial["counts"]["late"],
        partial["counts"]["invalid"],
        next_start,
    )
    state["misplaced"] = state.get("misplaced", 0) + 1
    _add_pending(state, pending, next_start, as_late(partial["counts"]))


def _advance_reported(
    state: MergeState, partition: str, partial: Partial, received: dict[str, str]
) -> None:
    if "closed_until_ms" not in partial:
        # Written by a first stage that sent each partition's partials in time order.
        progress: int | None = partial["end_ms"]
    else:
        before = partial.get("closed_before_ms")
        until = partial.get("closed_until_ms")
        progress = before
        if before is not None and until is not None:
            duration = state["duration_ms"]
            step_ends = range(before + duration, until + 1, duration)
            if len(step_ends) <= MAX_STEP_INTERVALS and all(
                str(step_end) in received for step_end in step_ends
            ):
                progress = until
    reported = state["reported_until"].get(partition)
    if progress is not None and (reported is None or progress > reported):
        state["reported_until"][partition] = progress


def _forget_oldest(received: dict[str, str]) -> None:
    if len(received) > REMEMBERED_PARTIALS:
        for end in sorted(received, key=int)[: len(received) - REMEMBERED_PARTIALS]:
            del received[end]


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
