"""The pipeline's own stateful steps on plain values (no Kafka): the late check."""

from __future__ import annotations

from typing import Any, cast

from quixstreams import State

from login_stream.events import InvalidRecord, LoginRecord, Origin, Record, TickRecord
from login_stream.pipeline import WATERMARK_STATE_KEY, place_late_records

DURATION = 10_000
GRACE = 2_000
ORIGIN: Origin = {"topic": "user-login", "partition": 0, "offset": 7, "key": "k"}


class DictState:
    """The two calls of Quix's `State` the step makes, on a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value


def place(record: Record, timestamp_ms: int, state: DictState) -> Record:
    return place_late_records(
        record,
        "all",
        timestamp_ms,
        None,
        cast(State[str, Any], state),
        duration_ms=DURATION,
        grace_ms=GRACE,
    )


def login() -> LoginRecord:
    return {
        "kind": "login",
        "event_ms": None,
        "device_type": "iOS",
        "missing": [],
        "original": "{}",
        "origin": ORIGIN,
    }


def test_time_only_moves_forward_and_on_time_records_pass_unchanged() -> None:
    state = DictState()
    assert place(login(), 25_000, state) == login()
    assert state.values[WATERMARK_STATE_KEY] == 25_000
    # Older, but its interval [20 s, 30 s) is open; and one at the watermark itself.
    assert place(login(), 21_000, state) == login()
    assert place(login(), 25_000, state) == login()
    # The previous interval [10 s, 20 s) closes at 22 s: at 25 s it has closed.
    assert place(login(), 19_999, state)["kind"] == "late"
    assert state.values[WATERMARK_STATE_KEY] == 25_000


def test_a_late_login_is_counted_now_and_late_ticks_and_invalids_keep_their_kind() -> None:
    state = DictState()
    place(login(), 40_000, state)

    late = place(login(), 5_000, state)
    tick: TickRecord = {"kind": "tick"}
    invalid: InvalidRecord = {
        "kind": "invalid",
        "reason": "invalid json",
        "original": "{",
        "origin": ORIGIN,
    }

    assert late == {
        "kind": "late",
        "reason": "late",
        "original": "{}",
        "origin": ORIGIN,
        "at_ms": 40_000,
    }
    assert place(tick, 5_000, state) == {"kind": "tick", "at_ms": 40_000}
    assert place(invalid, 5_000, state) == {**invalid, "at_ms": 40_000}
    assert state.values[WATERMARK_STATE_KEY] == 40_000
