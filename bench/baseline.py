"""The baseline, the summaries the pipeline must publish for the pre-loaded data, and the check
of every pipeline drain against it. It is computed while the data is written, with the
pipeline's own functions (`parse_login`, `aggregation`) and no framework.

As in the pipeline, each partition's own latest time decides what is late (`is_closed`), a late
record is placed in the interval open at that time (`placed_late`), and the partitions' counts
of an interval add up as the merge adds their partials.
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any, Final

import orjson

from bench import BenchError
from login_stream.aggregation import (
    MILLIS_PER_SECOND,
    Counts,
    closing_summaries,
    count_record,
    empty_counts,
    is_closed,
    placement_time,
    start_interval,
)
from login_stream.events import Record, parse_login, placed_late

COUNTED: Final = ("messages_consumed", "invalid_message_count", "late_message_count")


class Baseline:
    def __init__(self, window_s: int, grace_s: int, max_message_bytes: int) -> None:
        self._duration_ms = window_s * MILLIS_PER_SECOND
        self._grace_ms = grace_s * MILLIS_PER_SECOND
        self._max_message_bytes = max_message_bytes
        self._watermarks: dict[int, int] = {}
        self._intervals: dict[int, Counts] = {}

    def add(self, partition: int, value: bytes, timestamp_ms: int) -> None:
        """Count one message written to `partition` with the Kafka timestamp given."""
        record: Record = parse_login(value, self._max_message_bytes, None)
        at_ms = placement_time(record, timestamp_ms, self._grace_ms)
        watermark_ms = self._watermarks.get(partition)
        if watermark_ms is None or at_ms > watermark_ms:
            self._watermarks[partition] = at_ms
        elif is_closed(at_ms, watermark_ms, self._duration_ms, self._grace_ms):
            record, at_ms = placed_late(record, watermark_ms), watermark_ms
        start = at_ms - at_ms % self._duration_ms
        counts = self._intervals.get(start)
        self._intervals[start] = (
            start_interval(record) if counts is None else count_record(counts, record)
        )

    def summaries(self) -> list[dict[str, Any]]:
        """Every interval from the first with data to the last, with the running totals."""
        published: list[dict[str, Any]] = []
        totals = empty_counts()
        last_end_ms: int | None = None
        for start in sorted(self._intervals):
            end = start + self._duration_ms
            summaries, totals = closing_summaries(
                totals, last_end_ms, start, end, self._intervals[start]
            )
            published.extend(summaries)
            last_end_ms = end
        return published


def check(label: str, got: list[dict[str, Any]], want: list[dict[str, Any]], events: int) -> None:
    """Fail, showing the first differing interval, unless the pipeline published (`got`) exactly
    the baseline (`want`), and its intervals count each of the `events` messages once."""
    for index, (published, expected) in enumerate(zip_longest(got, want)):
        if published != expected:
            raise BenchError(
                f"{label}: interval #{index} differs from the baseline's\n"
                f"  pipeline: {_show(published)}\n  baseline: {_show(expected)}"
            )
    # Every message is counted once, in one of these of one interval.
    counted = sum(summary[f"interval_{name}"] for summary in got for name in COUNTED)
    if counted != events:
        raise BenchError(f"{label}: the intervals count {counted} messages, not {events}")


def _show(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
