"""The baseline: the summaries the pipeline must publish for the pre-loaded data, computed in
the harness while the data is written, with the pipeline's own parsing and counting
(`parse_login`, `aggregation`) and no framework. Every pipeline drain is checked against it.

Like the pipeline's first stage, each partition's own latest time decides what is late
(`is_closed`, Quix Streams' rule): a record whose interval has closed is placed in the interval
open at that time (`placed_late`). The partitions' counts of an interval add up to its summary,
as the merge adds their partials.
"""

from __future__ import annotations

from typing import Any

from login_stream.aggregation import (
    Counts,
    closing_summaries,
    count_record,
    empty_counts,
    is_closed,
    placement_time,
    start_interval,
)
from login_stream.events import Record, parse_login, placed_late


class Baseline:
    def __init__(self, duration_ms: int, grace_ms: int, max_message_bytes: int) -> None:
        self._duration_ms = duration_ms
        self._grace_ms = grace_ms
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
