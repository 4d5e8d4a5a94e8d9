"""The pipeline's own stateful steps on plain values (no Kafka): placing in time and the late
check."""

from __future__ import annotations

from typing import Any, cast

from quixstreams import State

from login_stream.events import InvalidRecord, LoginRecord, Record, TickRecord
from login_stream.pipeline import WATERMARK_STATE_KEY, place_records

DURATION = 10_000
GRACE = 2_000


class DictState:
    """The two calls of Quix's `State` the step makes, on a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def place(record: Record, record_ms: int, state: DictState, by_event_time: bool = False) -> Record:
    return place_records(
        record,
        "all",
        record_ms,
        None,
        cast(State[str, Any], state),
        duration_ms=DURATION,
        grace_ms=GRACE,
        by_event_time=by_event_time,
    )


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
    state = DictState()
    assert place(login(), 25_000, state) == {**login(), "at_ms": 25_000}
    assert state.values[WATERMARK_STATE_KEY] == 25_000
    # Older, but its interval [20 s, 30 s) is open; and one at the watermark itself.
    assert place(login(), 21_000, state) == {**login(), "at_ms": 21_000}
    assert place(login(), 25_000, state) == {**login(), "at_ms": 25_000}
    # The previous interval [10 s, 20 s) closes at 22 s: at 25 s it has closed.
    assert place(login(), 19_999, state)["kind"] == "late"
    assert state.values[WATERMARK_STATE_KEY] == 25_000


def test_by_event_time_the_event_places_itself_unless_its_clock_is_ahead() -> None:
    state = DictState()
    assert place(login(event_ms=24_000), 30_000, state, by_event_time=True)["at_ms"] == 24_000
    assert state.values[WATERMARK_STATE_KEY] == 24_000
    # Beyond its Kafka time by more than the grace period: its Kafka time places it.
    ahead = place(login(event_ms=99_000), 30_000, state, by_event_time=True)
    assert ahead["at_ms"] == 30_000
    # Without event time, the Kafka time places every record.
    assert place(login(event_ms=24_000), 30_500, state)["at_ms"] == 30_500
    assert state.values[WATERMARK_STATE_KEY] == 30_500


def test_a_late_login_is_counted_now_and_late_ticks_and_invalids_keep_their_kind() -> None:
    state = DictState()
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
    assert state.values[WATERMARK_STATE_KEY] == 40_000
