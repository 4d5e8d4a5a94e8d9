"""The login event model: parsing and validating raw `user-login` messages.

Every raw message becomes exactly one small record, so nothing that arrives is lost:

* a *login* record for a valid event (possibly with missing fields), carrying only what the
  aggregation needs: the event time, the canonical device type and the missing fields;
* an *invalid* record with a short reason for anything that cannot be read as a login event.

Both carry the original message's value and key as the bytes read, so that whatever ends up
dead-lettered, invalid at once or found *late* further down the pipeline, is written whole.
Records never leave the process that read them (both stages re-key in place), so they hold the
bytes as they are: nothing is decoded or copied for the few that turn out to be dead letters.
"""

from __future__ import annotations

import math
from typing import Any, Final, Literal, TypedDict, cast

import orjson

EXPECTED_FIELDS: Final = (
    "user_id",
    "app_version",
    "device_type",
    "ip",
    "locale",
    "device_id",
    "timestamp",
)
_TEXT_FIELDS: Final = tuple(field for field in EXPECTED_FIELDS if field != "timestamp")

# Upstream spells the two known types "android" and "iOS"; any other spelling of them
# ("ios", "Android") is the same device. Unknown types are counted in lower case.
CANONICAL_DEVICE_TYPES: Final = {"android": "android", "ios": "iOS"}
# The spellings upstream sends, looked up as they are before any folding.
_KNOWN_SPELLINGS: Final = {spelling: spelling for spelling in CANONICAL_DEVICE_TYPES.values()}

# Seconds since the epoch below this bound (year 5138) are plausible; anything above is
# almost certainly milliseconds or garbage and would drag the event clock far ahead.
MAX_EPOCH_SECONDS: Final = 100_000_000_000

LOGIN: Final = "login"
INVALID: Final = "invalid"
LATE: Final = "late"
# The dead-letter reason of a login stamped further ahead of the processor's clock than it
# tolerates: its time cannot be trusted, so it is counted as invalid (see `placed_future`).
FUTURE: Final = "future"


class _Placed(TypedDict, total=False):
    # The time that places the record in an interval, set by the late check: its own time, or
    # for a record that arrived after its interval closed, a time of the interval it is
    # counted in instead (see `aggregation.is_closed`).
    at_ms: int


class LoginRecord(_Placed):
    kind: Literal["login"]
    event_ms: int | None
    device_type: str | None
    missing: list[str]
    original: bytes
    key: bytes | None


class InvalidRecord(_Placed):
    kind: Literal["invalid"]
    reason: str
    original: bytes | None
    key: bytes | None


class LateRecord(_Placed):
    """A login that arrived after its interval had closed: counted as late, dead-lettered."""

    kind: Literal["late"]
    reason: str
    original: bytes
    key: bytes | None


class TickRecord(_Placed):
    """A beat of the processor's own clock (see `clock`): advances time, counts as nothing."""

    kind: Literal["tick"]


Record = LoginRecord | InvalidRecord | LateRecord | TickRecord
DeadLetter = InvalidRecord | LateRecord


class _BadField(ValueError):
    """A field is present but holds a value of the wrong type or form."""


def parse_login(
    raw: bytes | None, max_bytes: int, key: bytes | None
) -> LoginRecord | InvalidRecord:
    """Turn one raw message, its value `raw` and its `key`, into a login or an invalid record."""
    if raw is None:
        return _dead_letter("tombstone", raw, key)
    if len(raw) > max_bytes:
        return _dead_letter("oversized", raw, key)
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _dead_letter(_undecodable_reason(raw), raw, key)
    if not isinstance(event, dict):
        return _dead_letter("not a json object", raw, key)
    try:
        return _login_record(event, raw, key)
    except _BadField as exc:
        return _dead_letter(str(exc), raw, key)


def read_message(
    raw: bytes | None, key: bytes | None, _timestamp: int, _headers: Any, max_bytes: int
) -> LoginRecord | InvalidRecord:
    """`parse_login` as a step of the pipeline, which hands it the message's metadata."""
    return parse_login(raw, max_bytes, key)


def is_dead_letter(record: Record) -> bool:
    return record["kind"] == INVALID or record["kind"] == LATE


def placed_late(record: Record, at_ms: int) -> Record:
    """`record`, arrived after its interval closed, re-placed at `at_ms` in an open interval.

    A login becomes a late record; anything else keeps its kind (an invalid message is already
    dead-lettered and counted as invalid, a tick counts as nothing) and only moves in time.
    """
    if record["kind"] == LOGIN:
        late: LateRecord = {**_dead_letter_of(record, LATE), "kind": LATE, "at_ms": at_ms}
        return late
    return _moved(record, at_ms)


def placed_future(record: Record, at_ms: int) -> Record:
    """`record`, stamped too far ahead of the processor's clock, placed at `at_ms` instead.

    Its time is the one thing that places a login, and it is wrong: trusted, it would move
    the partition's time ahead, close every interval up to it at once and make every honest
    event after it late. A login becomes an invalid record with the reason `future` (counted
    as invalid, dead-lettered whole); anything else keeps its kind and only moves in time.
    """
    if record["kind"] == LOGIN:
        future: InvalidRecord = {**_dead_letter_of(record, FUTURE), "kind": INVALID, "at_ms": at_ms}
        return future
    return _moved(record, at_ms)


class _DeadLetterFields(TypedDict):
    reason: str
    original: bytes
    key: bytes | None


def _dead_letter_of(login: LoginRecord, reason: str) -> _DeadLetterFields:
    return {"reason": reason, "original": login["original"], "key": login["key"]}


def _moved(record: Record, at_ms: int) -> Record:
    placed = record.copy()
    placed["at_ms"] = at_ms
    return placed


def _login_record(event: dict[str, object], raw: bytes, key: bytes | None) -> LoginRecord:
    # One pass over the fields, in `EXPECTED_FIELDS` order, with no call per field: this runs
    # for every message, and the common event has every field as plain text.
    missing: list[str] = []
    for field in _TEXT_FIELDS:
        value = event.get(field)
        if value is None:
            missing.append(field)
        elif not isinstance(value, str):
            raise _BadField(f"bad field: {field} is {type(value).__name__}, not text")
        elif not value or value.isspace():
            missing.append(field)
    timestamp = event.get("timestamp")
    if timestamp is None or (isinstance(timestamp, str) and (not timestamp or timestamp.isspace())):
        missing.append("timestamp")
        event_ms = None
    else:
        event_ms = _event_ms(timestamp)
    return {
        "kind": LOGIN,
        "event_ms": event_ms,
        "device_type": None
        if "device_type" in missing
        else canonical_device_type(cast(str, event["device_type"])),
        "missing": missing,
        "original": raw,
        "key": key,
    }


def canonical_device_type(device_type: str) -> str:
    known = _KNOWN_SPELLINGS.get(device_type)
    if known is not None:
        return known
    folded = device_type.strip().lower()
    return CANONICAL_DEVICE_TYPES.get(folded, folded)


def _event_ms(timestamp: object) -> int:
    """Epoch milliseconds of an upstream `timestamp`: int seconds or a numeric string."""
    # Upstream's own form, checked first: bool is a subclass of int, so `type` and not
    # `isinstance` keeps it out.
    if type(timestamp) is int and 0 <= timestamp < MAX_EPOCH_SECONDS:
        return timestamp * 1000
    if isinstance(timestamp, bool):
        raise _BadField("bad field: timestamp is bool, not epoch seconds")
    if isinstance(timestamp, str):
        try:
            seconds: float = float(timestamp.strip())
        except ValueError:
            raise _BadField("bad field: timestamp is not a number") from None
    elif isinstance(timestamp, int | float):
        seconds = timestamp
    else:
        raise _BadField(f"bad field: timestamp is {type(timestamp).__name__}")
    if not math.isfinite(seconds) or not 0 <= seconds < MAX_EPOCH_SECONDS:
        raise _BadField("bad field: timestamp out of range")
    return int(seconds * 1000)


def _undecodable_reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not utf-8"
    return "invalid json"


def _dead_letter(reason: str, raw: bytes | None, key: bytes | None) -> InvalidRecord:
    return {"kind": INVALID, "reason": reason, "original": raw, "key": key}
