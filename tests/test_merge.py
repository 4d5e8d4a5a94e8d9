"""The merge rule of the second stage, on plain partials (no Kafka)."""

from __future__ import annotations

import copy
import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from login_stream.aggregation import Counts, add_counts, empty_counts
from login_stream.merge import (
    REMEMBERED_PARTIALS,
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


def stepped(
    partition: int, start_s: int, value: Counts, before_s: int, until_s: int, partitions: int = 1
) -> Partial:
    """A partial with the bounds of the step that closed it."""
    return {
        **partial(partition, start_s, value, partitions),
        "closed_before_ms": before_s * SECOND,
        "closed_until_ms": until_s * SECOND,
    }


def test_intervals_closed_in_one_step_count_exactly_in_any_order() -> None:
    # One record moved partition 0 from before 110 to past 130: [110, 120) and [120, 130)
    # closed in one step, and came back newest first.
    first = [stepped(0, 100, counts(1), 100, 110)]
    step = [stepped(0, 120, counts(4), 110, 130), stepped(0, 110, counts(2), 110, 130)]
    _, published = feed(first + step)
    assert [s["timestamp_start"] for s in published] == [100, 110, 120]
    assert [s["interval_messages_consumed"] for s in published] == [1, 2, 4]
    assert [s["total_messages_consumed"] for s in published] == [1, 3, 7]


def test_a_step_that_may_hold_unsent_intervals_waits_for_the_partitions_next_partial() -> None:
    # The step from 110 to 140 closed [120, 130) only: [110, 120) and [130, 140) may still come.
    merger, published = feed([stepped(0, 120, counts(3), 110, 140)])
    assert published == []
    assert waiting_for(merger.state) == [0]
    # The next step starts at 140: nothing else was closed before it.
    _, published = feed([stepped(0, 140, counts(1), 140, 150)], merger)
    assert [s["timestamp_start"] for s in published] == [120, 130, 140]
    assert [s["interval_messages_consumed"] for s in published] == [3, 0, 1]


def test_a_partition_is_complete_only_when_its_step_is_across_partitions() -> None:
    merger, published = feed(
        [
            stepped(1, 100, counts(5), 100, 110, partitions=2),
            stepped(0, 110, counts(2), 100, 120, partitions=2),
            stepped(0, 100, counts(1), 100, 120, partitions=2),
        ]
    )
    assert [s["interval_messages_consumed"] for s in published] == [6]
    _, published = feed([stepped(1, 110, counts(1), 110, 120, partitions=2)], merger)
    assert [s["interval_messages_consumed"] for s in published] == [3]


def test_an_identical_partial_sent_again_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    # At-least-once: a first stage restarted from its last checkpoint sends it again.
    sent = [stepped(0, 100, counts(2, ios=1), 100, 110), stepped(0, 110, counts(3), 110, 120)]
    merger, published = feed(sent)
    before = copy.deepcopy(merger)
    with caplog.at_level(logging.WARNING):
        again, republished = feed(sent, merger)
    assert republished == []
    assert again.state == before.state and again.pending.intervals == before.pending.intervals
    assert [s["total_messages_consumed"] for s in published] == [2, 5]
    assert len(caplog.records) == 2 and "the same as one already received" in caplog.text


def test_a_second_different_partial_of_an_interval_is_counted_late_in_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    merger, published = feed([stepped(0, 100, counts(2), 100, 110)])
    assert [s["interval_messages_consumed"] for s in published] == [2]
    with caplog.at_level(logging.ERROR):
        merger, published = feed([stepped(0, 100, counts(5, invalid=1), 100, 110)], merger)
    assert published == []
    assert merger.state["misplaced"] == 1
    assert [r.levelname for r in caplog.records] == ["ERROR"]
    assert "second partial, with other counts" in caplog.text
    _, published = feed([stepped(0, 110, counts(1), 110, 120)], merger)
    assert published[0]["interval_messages_consumed"] == 1
    assert published[0]["interval_late_message_count"] == 5
    assert published[0]["interval_invalid_message_count"] == 1
    assert published[0]["total_messages_consumed"] == 3


def test_a_partial_of_a_published_interval_counts_as_misplaced() -> None:
    merger, _ = feed([stepped(0, 100, counts(2), 100, 110), stepped(0, 110, counts(1), 110, 120)])
    merger, published = feed([stepped(0, 100, counts(4), 100, 110)], merger)
    assert merger.state["misplaced"] == 1 and published == []


def test_a_merge_state_saved_before_partials_were_remembered_goes_on() -> None:
    merger, _ = feed([partial(0, 100, counts(1), partitions=1)])
    del merger.state["received"]  # type: ignore[misc]
    del merger.state["misplaced"]  # type: ignore[misc]
    _, published = feed([stepped(0, 110, counts(2), 110, 120)], merger)
    assert [s["total_messages_consumed"] for s in published] == [3]


def test_only_the_latest_partials_of_a_partition_are_remembered() -> None:
    merger, _ = feed(
        [stepped(0, start, counts(1), start, start + 10) for start in range(0, 2000, 10)]
    )
    remembered = merger.state["received"]["0"]
    assert len(remembered) == REMEMBERED_PARTIALS
    assert min(map(int, remembered)) == (2000 - 10 * REMEMBERED_PARTIALS + 10) * SECOND
