"""Placing records in time on plain values (no Kafka): on time, late, stamped in the future,
and the bounds of each step."""

from __future__ import annotations

import contextvars
import logging

import pytest
from quixstreams.context import set_message_context
from quixstreams.models import MessageContext

from login_stream.events import InvalidRecord, LoginRecord, Record, TickRecord
from login_stream.placement import Placement, StepBounds

DURATION = 10_000
GRACE = 2_000
FUTURE_TOLERANCE = 5_000
# The processor's clock in these tests: far after every record time they use.
NOW_MS = 1_000_000


def placement(by_event_time: bool = False, now_ms: int = NOW_MS) -> Placement:
    return Placement(
        duration_ms=DURATION,
        grace_ms=GRACE,
        by_event_time=by_event_time,
        future_tolerance_ms=FUTURE_TOLERANCE,
        clock=lambda: now_ms / 1000,
    )


class Partition:
    """A partition's watermark as the window keeps it: the greatest time placed in it."""

    def __init__(self) -> None:
        self.watermark: int | None = None


def place(
    record: Record,
    record_ms: int,
    partition: Partition,
    by_event_time: bool = False,
    step: Placement | None = None,
    offset: int = 0,
) -> Record:
    """Place `record` as the message at `offset` of partition 0 of topic "in"."""
    context = contextvars.copy_context()
    context.run(set_message_context, MessageContext("in", 0, offset, 0))
    chosen = step or placement(by_event_time)
    placed = context.run(chosen.place, record, record_ms, partition.watermark)
    partition.watermark = max(partition.watermark or placed["at_ms"], placed["at_ms"])
    return placed


def login(event_ms: int | None = None) -> LoginRecord:
    return {
        "kind": "login",
        "event_ms": event_ms,
        "device_type": "iOS",
        "missing": [],
        "original": b"{}",
        "key": b"k",
    }


def test_time_only_moves_forward_and_on_time_records_keep_their_time() -> None:
    state = Partition()
    assert place(login(), 25_000, state) == {**login(), "at_ms": 25_000}
    assert state.watermark == 25_000
    # Older, but its interval [20 s, 30 s) is open; and one at the watermark itself.
    assert place(login(), 21_000, state) == {**login(), "at_ms": 21_000}
    assert place(login(), 25_000, state) == {**login(), "at_ms": 25_000}
    # The previous interval [10 s, 20 s) closes at 22 s: at 25 s it has closed.
    assert place(login(), 19_999, state)["kind"] == "late"
    assert state.watermark == 25_000


def test_by_event_time_the_event_places_itself_unless_its_clock_is_ahead() -> None:
    state = Partition()
    assert place(login(event_ms=24_000), 30_000, state, by_event_time=True)["at_ms"] == 24_000
    assert state.watermark == 24_000
    # Beyond its Kafka time by more than the grace period: its Kafka time places it.
    ahead = place(login(event_ms=99_000), 30_000, state, by_event_time=True)
    assert ahead["at_ms"] == 30_000
    # Without event time, the Kafka time places every record.
    assert place(login(event_ms=24_000), 30_500, state)["at_ms"] == 30_500
    assert state.watermark == 30_500


def test_a_late_login_is_counted_now_and_late_ticks_and_invalids_keep_their_kind() -> None:
    state = Partition()
    place(login(), 40_000, state)

    late = place(login(), 5_000, state)
    tick: TickRecord = {"kind": "tick"}
    invalid: InvalidRecord = {
        "kind": "invalid",
        "reason": "invalid json",
        "original": b"{",
        "key": None,
    }

    assert late == {
        "kind": "late",
        "reason": "late",
        "original": b"{}",
        "key": b"k",
        "at_ms": 40_000,
    }
    assert place(tick, 5_000, state) == {"kind": "tick", "at_ms": 40_000}
    assert place(invalid, 5_000, state) == {**invalid, "at_ms": 40_000}
    assert state.watermark == 40_000


def test_a_record_stamped_beyond_the_tolerance_never_moves_time() -> None:
    state = Partition()
    place(login(), 40_000, state)
    ahead = NOW_MS + FUTURE_TOLERANCE + 1
    # A login becomes invalid ("future"), placed at the partition's current time.
    assert place(login(), ahead, state) == {
        "kind": "invalid",
        "reason": "future",
        "original": b"{}",
        "key": b"k",
        "at_ms": 40_000,
    }
    assert state.watermark == 40_000
    # Within the tolerance it is trusted, and moves time.
    assert place(login(), NOW_MS + FUTURE_TOLERANCE, state)["at_ms"] == NOW_MS + FUTURE_TOLERANCE
    assert state.watermark == NOW_MS + FUTURE_TOLERANCE


def test_by_event_time_a_future_event_and_record_time_is_still_future() -> None:
    state = Partition()
    place(login(), 40_000, state, by_event_time=True)
    ahead = NOW_MS + 3_600_000
    placed = place(login(event_ms=ahead), ahead, state, by_event_time=True)
    assert placed["kind"] == "invalid" and placed["at_ms"] == 40_000


def test_future_ticks_and_invalids_keep_their_kind_and_a_first_record_starts_at_the_clock() -> None:
    state = Partition()
    ahead = NOW_MS + 3_600_000
    tick: TickRecord = {"kind": "tick"}
    assert place(tick, ahead, state) == {"kind": "tick", "at_ms": NOW_MS}
    assert state.watermark == NOW_MS
    invalid: InvalidRecord = {
        "kind": "invalid",
        "reason": "not utf-8",
        "original": b"\xff",
        "key": None,
    }
    assert place(invalid, ahead, state) == {**invalid, "at_ms": NOW_MS}


def test_future_records_are_logged_once_per_period_with_the_count_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = Partition()
    step = placement()
    place(login(), 40_000, state, step=step)
    with caplog.at_level(logging.WARNING, logger="login_stream.placement"):
        for offset in range(1, 6):
            place(login(), NOW_MS + 60_000, state, step=step, offset=offset)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines
    assert "in[0] at offset 1" in lines[0] and "FUTURE_TOLERANCE_SECONDS=5" in lines[0]


def test_each_step_that_moves_time_gives_the_interval_ends_it_closes_between() -> None:
    state = Partition()
    step = placement()
    place(login(), 21_000, state, step=step, offset=1)
    assert step.bounds_of(("in", 0, 1)) == StepBounds(("in", 0, 1), None, 10_000)
    # 33 s closes [20 s, 30 s) (it ends 2 s of grace before 33 s).
    place(login(), 33_000, state, step=step, offset=2)
    assert step.bounds_of(("in", 0, 2)) == StepBounds(("in", 0, 2), 10_000, 30_000)
    # A jump closes several intervals in one step.
    place(login(), 75_000, state, step=step, offset=3)
    assert step.bounds_of(("in", 0, 3)) == StepBounds(("in", 0, 3), 30_000, 70_000)
    # Records that do not move time have no step of their own.
    place(login(), 74_000, state, step=step, offset=4)
    place(login(), NOW_MS + 60_000, state, step=step, offset=5)
    assert step.bounds_of(("in", 0, 4)) is None
    assert step.bounds_of(("in", 0, 5)) is None
