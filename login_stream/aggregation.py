"""The interval arithmetic of the pipeline, as plain functions on plain data.

An *interval* holds the counts of one tumbling window; the *totals* hold the same counts
summed over every interval since the pipeline first ran on its consumer group. Both have the
same shape, so one function adds an interval to the totals. Nothing here knows about Kafka.
"""

from __future__ import annotations

import logging
from typing import Any, Final, TypedDict

from .events import INVALID, LATE, LOGIN, Record

logger = logging.getLogger(__name__)

MILLIS_PER_SECOND: Final = 1000

# Empty intervals between two published ones (the processor was down, or a replay has a hole)
# are filled in up to this many; a larger hole is logged instead of flooding the output.
MAX_FILLED_INTERVALS: Final = 8640


class Counts(TypedDict):
    messages: int
    invalid: int
    late: int
    missing: dict[str, int]
    device_types: dict[str, int]


def empty_counts() -> Counts:
    return {"messages": 0, "invalid": 0, "late": 0, "missing": {}, "device_types": {}}


def start_interval(record: Record) -> Counts:
    """The counts of a new interval whose first record is `record`."""
    return count_record(empty_counts(), record)


def count_record(interval: Counts, record: Record) -> Counts:
    """Add one record to an interval; mutates and returns it (it lives in window state)."""
    if record["kind"] == LOGIN:
        interval["messages"] += 1
        device_type = record["device_type"]
        if device_type is not None:
            _increment(interval["device_types"], device_type)
        for field in record["missing"]:
            _increment(interval["missing"], field)
    elif record["kind"] == INVALID:
        interval["invalid"] += 1
    elif record["kind"] == LATE:
        interval["late"] += 1
    return interval


def add_counts(totals: Counts, interval: Counts) -> Counts:
    """A new totals value: `totals` plus `interval`."""
    return {
        "messages": totals["messages"] + interval["messages"],
        "invalid": totals["invalid"] + interval["invalid"],
        "late": totals["late"] + interval["late"],
        "missing": _add_tallies(totals["missing"], interval["missing"]),
        "device_types": _add_tallies(totals["device_types"], interval["device_types"]),
    }


def placement_time(record: Record, record_ms: int, grace_ms: int) -> int:
    """The time that places `record` in an interval: the event's own time when it has a
    usable one, else its Kafka record timestamp `record_ms`.

    An event cannot have happened after it was written to Kafka; one that claims to, by more
    than the grace period, has a wrong clock. Trusted, it would move the pipeline's time ahead
    and make every honest event after it late (or, stamped years ahead, stop all output), so
    its Kafka timestamp places it instead.
    """
    event_ms = record.get("event_ms")
    if isinstance(event_ms, int) and event_ms <= record_ms + grace_ms:
        return event_ms
    return record_ms


def is_closed(timestamp_ms: int, watermark_ms: int, duration_ms: int, grace_ms: int) -> bool:
    """Whether the interval holding `timestamp_ms` has closed once time reached `watermark_ms`.

    The rule of Quix Streams' tumbling window when it closes windows by key: an interval
    closes when the latest time seen passes its end by the grace period. A record for a
    closed interval is *late*. (The pipeline closes by partition, which is cheaper but would
    accept some records into closed windows; its late check applies this rule first.)
    """
    interval_end = timestamp_ms - timestamp_ms % duration_ms + duration_ms
    return interval_end <= watermark_ms - grace_ms


def closed_until(watermark_ms: int, duration_ms: int, grace_ms: int) -> int:
    """The end of the latest interval that has closed once time reached `watermark_ms`: every
    interval ending at or before it is closed, every later one is open.

    The bound Quix Streams' window keeps when it closes by partition: each record closes the
    intervals whose end lies between the previous bound and this one, all in the same step.
    """
    bound = watermark_ms - grace_ms
    return bound - bound % duration_ms


def skipped_intervals(
    previous_end_ms: int | None, start_ms: int, duration_ms: int
) -> list[tuple[int, int]]:
    """Bounds of the intervals between the last published one and `start_ms`, if any."""
    if previous_end_ms is None or previous_end_ms >= start_ms:
        return []
    return [(begin, begin + duration_ms) for begin in range(previous_end_ms, start_ms, duration_ms)]


def closing_summaries(
    totals: Counts, last_end_ms: int | None, start_ms: int, end_ms: int, interval: Counts
) -> tuple[list[dict[str, Any]], Counts]:
    """The summaries a closed interval publishes, and the totals that include it: zero
    summaries for the intervals skipped since the last one ended, so the series has no holes,
    then its own."""
    skipped = skipped_intervals(last_end_ms, start_ms, end_ms - start_ms)
    if len(skipped) > MAX_FILLED_INTERVALS:
        logger.warning("not filling %d empty intervals before %d", len(skipped), start_ms)
        skipped = []
    summaries = [summarize(begin, until, empty_counts(), totals) for begin, until in skipped]
    totals = add_counts(totals, interval)
    summaries.append(summarize(start_ms, end_ms, interval, totals))
    return summaries, totals


def summarize(start_ms: int, end_ms: int, interval: Counts, totals: Counts) -> dict[str, Any]:
    """The published summary of one interval, given the totals that include it."""
    return {
        "timestamp_start": start_ms // MILLIS_PER_SECOND,
        "timestamp_end": end_ms // MILLIS_PER_SECOND,
        "interval_messages_consumed": interval["messages"],
        "total_messages_consumed": totals["messages"],
        "interval_missing_field_count": interval["missing"],
        "interval_device_type_count": interval["device_types"],
        "total_missing_field_count": totals["missing"],
        "total_device_type_count": totals["device_types"],
        "interval_invalid_message_count": interval["invalid"],
        "total_invalid_message_count": totals["invalid"],
        "interval_late_message_count": interval["late"],
        "total_late_message_count": totals["late"],
    }


def has_messages(summary: dict[str, Any]) -> bool:
    return bool(
        summary["interval_messages_consumed"]
        or summary["interval_invalid_message_count"]
        or summary["interval_late_message_count"]
    )


def log_summary(summary: dict[str, Any]) -> None:
    logger.info(
        "interval %d-%d: %d logins %s, missing %s, invalid %d, late %d | totals: %d logins %s",
        summary["timestamp_start"],
        summary["timestamp_end"],
        summary["interval_messages_consumed"],
        summary["interval_device_type_count"],
        summary["interval_missing_field_count"],
        summary["interval_invalid_message_count"],
        summary["interval_late_message_count"],
        summary["total_messages_consumed"],
        summary["total_device_type_count"],
    )


def _increment(tally: dict[str, int], name: str) -> None:
    tally[name] = tally.get(name, 0) + 1


def _add_tallies(left: dict[str, int], right: dict[str, int]) -> dict[str, int]:
    merged = dict(left)
    for name, count in right.items():
        merged[name] = merged.get(name, 0) + count
    return merged
