"""The merge rule of the second stage, on plain partials (no Kafka)."""

from __future__ import annotations

import copy
import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from login_stream.aggregation import Counts, add_counts, empty_counts
from login_stream.merge import (
    InMemoryPending,
    MergeState,
    Partial,
    as_late,
    empty_merge_state,
    merge_partial,
    waiting_for,
)

SECOND = 1000
DURATION = 10 * SECOND


def counts(
    messages: int, ios: int = 0, missing: int = 0, invalid: int = 0, late: int = 0
) -> Counts:
    return {
        "messages": messages,
        "invalid": invalid,
        "late": late,
        "device_types": {"iOS": ios} if ios else {},
        "missing": {"device_type": missing} if missing else {},
    }


def partial(partition: int, start_s: int, value: Counts, partitions: int = 3) -> Partial:
    return {
        "partition": partition,
        "partitions": partitions,
        "start_ms": start_s * SECOND,
        "end_ms": start_s * SECOND + DURATION,
        "counts": value,
    }


@dataclass
class Merger:
    state: MergeState = field(default_factory=empty_merge_state)
    pending: InMemoryPending = field(default_factory=InMemoryPending)


def feed(partials: list[Partial], merger: Merger | None = None) -> tuple[Merger, list[Any]]:
    merger = merger or Merger()
    published: list[Any] = []
    for one in partials:
        published.extend(merge_partial(merger.state, merger.pending, one))
    return merger, published


def test_an_interval_is_published_once_every_partition_reported_it() -> None:
    state, published = feed([partial(0, 100, counts(2, ios=2)), partial(1, 100, counts(1))])
    assert published == []
    assert waiting_for(state.state) == [2]
    state, published = feed([partial(2, 100, counts(4, ios=1, missing=3))], state)
    assert [s["timestamp_start"] for s in published] == [100]
    assert published[0]["interval_messages_consumed"] == 7
    assert published[0]["interval_device_type_count"] == {"iOS": 3}
    assert published[0]["interval_missing_field_count"] == {"device_type": 3}
    assert published[0]["total_messages_consumed"] == 7
    assert waiting_for(state.state) == []
    assert state.pending.intervals == {}


def test_a_trailing_partition_holds_later_intervals_back_without_changing_them() -> None:
    ahead = [partial(p, start, counts(1)) for start in (100, 110, 120) for p in (0, 1)]
    state, published = feed(ahead)
    assert published == []
    assert waiting_for(state.state) == [2]
    assert len(state.pending.intervals) == 3
    state, published = feed([partial(2, start, counts(5)) for start in (100, 110, 120)], state)
    assert [s["timestamp_start"] for s in published] == [100, 110, 120]
    assert [s["interval_messages_consumed"] for s in published] == [7, 7, 7]
    assert [s["total_messages_consumed"] for s in published] == [7, 14, 21]


def test_an_interval_a_partition_skipped_is_covered_by_its_next_partial() -> None:
    # Partition 2 had no record from 100 to 120 (no processor ran it, say): its partial of
    # [120, 130) says it has nothing more before 130.
    _state, published = feed(
        [partial(p, start, counts(1)) for start in (100, 110, 120) for p in (0, 1)]
        + [partial(2, 120, counts(1))]
    )
    assert [s["interval_messages_consumed"] for s in published] == [2, 2, 3]


def test_intervals_no_partition_had_anything_for_are_published_as_zeros() -> None:
    _state, published = feed(
        [partial(p, 100, counts(1)) for p in range(3)]
        + [partial(p, 130, counts(1)) for p in range(3)]
    )
    assert [s["timestamp_start"] for s in published] == [100, 110, 120, 130]
    assert [s["interval_messages_consumed"] for s in published] == [3, 0, 0, 3]
    assert [s["total_messages_consumed"] for s in published] == [3, 3, 3, 6]


def test_a_duplicate_partial_changes_nothing() -> None:
    first = [partial(0, 100, counts(2)), partial(1, 100, counts(3))]
    state, _ = feed(first)
    before = copy.deepcopy(state)
    again, published = feed([first[0]], state)
    assert published == []
    assert again.state == before.state and again.pending.intervals == before.pending.intervals


def test_a_partial_of_a_published_interval_is_counted_late_in_the_next() -> None:
    # Two partitions merged up to 110; then a third partition appears (added to the topic)
    # with a partial for an interval that is already out.
    state, published = feed(
        [partial(p, start, counts(2), partitions=2) for start in (100, 110) for p in (0, 1)]
    )
    assert [s["timestamp_start"] for s in published] == [100, 110]
    state, published = feed([partial(2, 100, counts(3, ios=3, invalid=1), partitions=3)], state)
    assert published == []
    state, published = feed([partial(p, 120, counts(1), partitions=3) for p in (0, 1, 2)], state)
    assert [s["timestamp_start"] for s in published] == [120]
    assert published[0]["interval_messages_consumed"] == 3
    assert published[0]["interval_late_message_count"] == 3
    assert published[0]["interval_invalid_message_count"] == 1
    assert published[0]["interval_device_type_count"] == {}
    assert published[0]["total_messages_consumed"] == 2 * 2 * 2 + 3


def test_as_late_keeps_invalid_and_turns_logins_late() -> None:
    assert as_late(counts(4, ios=4, missing=1, invalid=2, late=1)) == counts(0, invalid=2, late=5)


def test_any_interleaving_of_the_partitions_gives_the_same_series() -> None:
    """Each partition reports in order; how the partitions interleave must not matter."""
    rng = random.Random(7)
    per_partition = [
        [
            partial(p, start, counts(rng.randint(0, 9), ios=rng.randint(0, 3)))
            for start in range(100, 200, 10)
        ]
        for p in range(3)
    ]
    expected_intervals: dict[int, Counts] = {}
    for one in itertools.chain.from_iterable(per_partition):
        start = one["start_ms"] // SECOND
        expected_intervals[start] = add_counts(
            expected_intervals.get(start, empty_counts()), one["counts"]
        )
    series = []
    for _ in range(20):
        queues = [list(q) for q in per_partition]
        order: list[Partial] = []
        while any(queues):
            queue = rng.choice([q for q in queues if q])
            order.append(queue.pop(0))
        _, published = feed(order)
        series.append(published)
    assert all(one == series[0] for one in series)
    assert [s["interval_messages_consumed"] for s in series[0]] == [
        expected_intervals[start]["messages"] for start in sorted(expected_intervals)
    ]
