"""Interval counting, totals and the published summary shape (no Kafka)."""

from __future__ import annotations

import random
from collections import Counter

from login_stream.aggregation import (
    MAX_FILLED_INTERVALS,
    add_counts,
    closing_summaries,
    count_record,
    empty_counts,
    is_closed,
    placement_time,
    start_interval,
    summarize,
)
from login_stream.events import (
    InvalidRecord,
    LateRecord,
    LoginRecord,
    Record,
)
from tests.spec import SUMMARY_FIELDS, UPSTREAM_FIELDS


def login(device_type: str | None, missing: list[str], event_ms: int | None = 0) -> LoginRecord:
    return {
        "kind": "login",
        "event_ms": event_ms,
        "device_type": device_type,
        "missing": missing,
        "original": b"{}",
        "key": None,
    }


def late() -> LateRecord:
    return {"kind": "late", "reason": "late", "original": b"{}", "key": None, "at_ms": 0}


def random_records(rng: random.Random, n: int) -> list[Record]:
    records: list[Record] = []
    for _ in range(n):
        if rng.random() < 0.05:
            records.append(late())
            continue
        if rng.random() < 0.1:
            invalid: InvalidRecord = {
                "kind": "invalid",
                "reason": "invalid json",
                "original": b"{",
                "key": None,
            }
            records.append(invalid)
            continue
        missing = [f for f in UPSTREAM_FIELDS if rng.random() < 0.05]
        device = None if "device_type" in missing else rng.choice(["iOS", "android"])
        records.append(login(device, missing))
    return records


def interval_of(records: list[Record]):  # type: ignore[no-untyped-def]
    interval = start_interval(records[0])
    for record in records[1:]:
        interval = count_record(interval, record)
    return interval


def test_interval_counts_match_a_direct_tally() -> None:
    records = random_records(random.Random(7), 500)
    logins = [r for r in records if r["kind"] == "login"]
    late_count = sum(r["kind"] == "late" for r in records)

    interval = interval_of(records)

    assert interval["messages"] == len(logins)
    assert interval["late"] == late_count
    assert interval["invalid"] == len(records) - len(logins) - late_count
    assert interval["device_types"] == Counter(
        r["device_type"] for r in logins if r["device_type"] is not None
    )
    assert interval["missing"] == Counter(f for r in logins for f in r["missing"])


def test_totals_are_the_sum_of_intervals_and_do_not_alias_them() -> None:
    rng = random.Random(11)
    batches = [random_records(rng, 40) for _ in range(5)]
    totals = empty_counts()
    for batch in batches:
        interval = interval_of(batch)
        totals = add_counts(totals, interval)
        interval["device_types"]["mutated-later"] = 1
    everything = interval_of([r for batch in batches for r in batch])
    assert totals == everything


def test_summary_has_the_published_fields_in_seconds() -> None:
    interval = interval_of([login("iOS", []), login(None, ["device_type"])])
    totals = add_counts(add_counts(empty_counts(), interval), interval)

    summary = summarize(1730392650_000, 1730392660_000, interval, totals)

    assert tuple(summary)[: len(SUMMARY_FIELDS)] == SUMMARY_FIELDS
    assert summary["timestamp_start"] == 1730392650
    assert summary["timestamp_end"] == 1730392660
    assert summary["interval_messages_consumed"] == 2
    assert summary["total_messages_consumed"] == 4
    assert summary["interval_device_type_count"] == {"iOS": 1}
    assert summary["interval_missing_field_count"] == {"device_type": 1}
    assert summary["total_device_type_count"] == {"iOS": 2}
    assert summary["total_missing_field_count"] == {"device_type": 2}


def test_late_counts_are_published_for_the_interval_and_in_total() -> None:
    interval = interval_of([login("iOS", []), late(), late()])
    totals = add_counts(add_counts(empty_counts(), interval), interval)

    summary = summarize(0, 10_000, interval, totals)

    assert summary["interval_messages_consumed"] == 1
    assert summary["interval_late_message_count"] == 2
    assert summary["total_late_message_count"] == 4


def test_an_interval_closes_when_time_passes_its_end_by_the_grace() -> None:
    duration, grace = 10_000, 2_000
    # The interval [10 s, 20 s) closes at 22 s, whatever instant inside it is asked about.
    for inside in (10_000, 15_000, 19_999):
        assert not is_closed(inside, 21_999, duration, grace)
        assert is_closed(inside, 22_000, duration, grace)
    assert not is_closed(20_000, 22_000, duration, grace)


def test_an_event_is_placed_by_its_own_time_unless_its_clock_is_ahead_of_kafka() -> None:
    grace = 2_000
    event = login("iOS", [], event_ms=50_000)
    assert placement_time(event, 60_000, grace) == 50_000  # happened before it was written
    assert placement_time(event, 48_000, grace) == 50_000  # ahead, but within the grace
    assert placement_time(event, 47_999, grace) == 47_999  # too far ahead: Kafka time
    assert placement_time(login("iOS", ["timestamp"], event_ms=None), 60_000, grace) == 60_000


def test_a_closed_interval_publishes_the_skipped_ones_first_with_unchanged_totals() -> None:
    totals = interval_of([login("iOS", [])])
    interval = interval_of([login("android", []), login(None, ["device_type"])])

    summaries, new_totals = closing_summaries(totals, 10_000, 40_000, 50_000, interval)

    assert [(s["timestamp_start"], s["timestamp_end"]) for s in summaries] == [
        (10, 20),
        (20, 30),
        (30, 40),
        (40, 50),
    ]
    assert [s["total_messages_consumed"] for s in summaries] == [1, 1, 1, 3]
    assert new_totals == add_counts(totals, interval)


def test_a_hole_too_large_to_fill_publishes_only_the_interval() -> None:
    duration = 10_000
    start = (MAX_FILLED_INTERVALS + 1) * duration
    summaries, _ = closing_summaries(empty_counts(), 0, start, start + duration, empty_counts())
    assert [s["timestamp_start"] for s in summaries] == [start // 1000]
