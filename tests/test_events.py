"""Parsing and validation of raw login messages (no Kafka)."""

from __future__ import annotations

import orjson
import pytest

from login_stream.events import InvalidRecord, parse_login, placed_late
from tests.spec import UPSTREAM_FIELDS

MAX_BYTES = 1024
KEY = b"k-1"


def upstream_event(**overrides: object) -> dict[str, object]:
    event: dict[str, object] = {
        "user_id": "424cdd21-063a-43a7-b91b-7ca1a833afae",
        "app_version": "2.3.0",
        "device_type": "android",
        "ip": "199.172.111.135",
        "locale": "RU",
        "device_id": "593-47-5928",
        "timestamp": "1694479551",
    }
    event.update(overrides)
    return event


def parse(event: object) -> dict[str, object]:
    return dict(parse_login(orjson.dumps(event), MAX_BYTES, KEY))


def test_string_timestamp_of_the_upstream_readme_is_accepted() -> None:
    raw = orjson.dumps(upstream_event())
    record = parse_login(raw, MAX_BYTES, KEY)
    assert record == {
        "kind": "login",
        "event_ms": 1694479551000,
        "device_type": "android",
        "missing": [],
        "original": raw,
        "key": KEY,
    }


def test_integer_timestamp_is_accepted() -> None:
    assert parse(upstream_event(timestamp=1730392658))["event_ms"] == 1730392658000


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_blank_fields_count_as_missing(blank: object) -> None:
    record = parse(upstream_event(device_type=blank, locale=blank))
    assert record["missing"] == ["device_type", "locale"]
    assert record["device_type"] is None


def test_absent_fields_are_missing_in_declared_order() -> None:
    record = parse({})
    assert record["kind"] == "login"
    assert record["missing"] == list(UPSTREAM_FIELDS)
    assert record["event_ms"] is None


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [("ios", "iOS"), ("IOS", "iOS"), ("iOS", "iOS"), ("Android", "android"), (" Web ", "web")],
)
def test_device_types_are_canonicalised(spelling: str, canonical: str) -> None:
    assert parse(upstream_event(device_type=spelling))["device_type"] == canonical


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "tombstone"),
        (b"{not json", "invalid json"),
        (b"\xff\xfe\x00garbage", "not utf-8"),
        (b"[1, 2]", "not a json object"),
        (b"42", "not a json object"),
        (b"x" * (MAX_BYTES + 1), "oversized"),
    ],
)
def test_unreadable_messages_are_invalid_with_a_reason(raw: bytes | None, reason: str) -> None:
    assert parse_login(raw, MAX_BYTES, KEY) == {
        "kind": "invalid",
        "reason": reason,
        "original": raw,
        "key": KEY,
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"timestamp": "yesterday"},
        {"timestamp": True},
        {"timestamp": [1]},
        {"timestamp": -5},
        {"timestamp": 1730392658000000},
        {"device_type": 42},
        {"user_id": {"id": 1}},
    ],
)
def test_wrongly_typed_fields_make_the_message_invalid(overrides: dict[str, object]) -> None:
    record = parse(upstream_event(**overrides))
    assert record["kind"] == "invalid"
    assert str(record["reason"]).startswith("bad field: " + next(iter(overrides)))


def test_a_late_login_keeps_its_original_bytes_and_key_and_moves_in_time() -> None:
    raw = orjson.dumps(upstream_event())
    login = parse_login(raw, MAX_BYTES, KEY)

    late = placed_late(login, at_ms=5_000)

    assert late == {
        "kind": "late",
        "reason": "late",
        "original": raw,
        "key": KEY,
        "at_ms": 5_000,
    }


def test_late_invalid_messages_and_ticks_keep_their_kind() -> None:
    invalid: InvalidRecord = {
        "kind": "invalid",
        "reason": "invalid json",
        "original": b"{",
        "key": None,
    }
    assert placed_late(invalid, at_ms=7) == {**invalid, "at_ms": 7}
    assert "at_ms" not in invalid
    assert placed_late({"kind": "tick"}, at_ms=7) == {"kind": "tick", "at_ms": 7}
