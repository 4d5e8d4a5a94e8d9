"""The merge's own cost: `login_stream.merge.merge_partial` timed alone, in the harness.

The merge runs inside the processor that owns the partials topic, where its CPU cannot be told
apart from the rest of that process. So it is timed here on its own, over as many partials as
a drain produces: one per input partition per interval with data, in the order the partitions
send them (every partition's partial of an interval, then the next interval), with the CPU
clock of the harness's own thread. Each partial carries its interval's counts as the baseline
computed them: the shape of a real partial (the values do not change the cost). Not included:
Quix's state read and write around each merge, and the partials topic.

In interval order the merge holds one interval at a time. The pipeline's merge keeps each
pending interval under a key of its own, so a partition trailing the others adds Quix state
reads and writes per partial, not a cost growing with the lag.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from login_stream.aggregation import MILLIS_PER_SECOND, Counts
from login_stream.merge import InMemoryPending, Partial, empty_merge_state, merge_partial

from .contestants import US_PER_S


@dataclass(frozen=True)
class MergeCost:
    partitions: int
    intervals: int
    events: int
    cpu_s: float  # median of the repeats

    @property
    def partials(self) -> int:
        return self.partitions * self.intervals

    @property
    def us_per_partial(self) -> float:
        return self.cpu_s * US_PER_S / self.partials

    @property
    def us_per_event(self) -> float:
        return self.cpu_s * US_PER_S / self.events


def merge_cost(
    summaries: Sequence[dict[str, Any]], partitions: int, events: int, repeats: int
) -> MergeCost:
    """The CPU time of merging P partials for each of `summaries` (the baseline's)."""
    partials: list[Partial] = [
        {
            "partition": partition,
            "partitions": partitions,
            "start_ms": summary["timestamp_start"] * MILLIS_PER_SECOND,
            "end_ms": summary["timestamp_end"] * MILLIS_PER_SECOND,
            "counts": _interval_counts(summary),
        }
        for summary in summaries
        for partition in range(partitions)
    ]
    return MergeCost(
        partitions,
        len(summaries),
        events,
        median(_merge_all(partials, len(summaries)) for _ in range(repeats)),
    )


def _merge_all(partials: Sequence[Partial], intervals: int) -> float:
    state, pending = empty_merge_state(), InMemoryPending()
    published = 0
    began = time.thread_time()
    for partial in partials:
        published += len(merge_partial(state, pending, partial))
    cpu_s = time.thread_time() - began
    # Timed work that published nothing would be a cost of nothing.
    assert published == intervals, f"merged {published} intervals of {intervals}"
    return cpu_s


def _interval_counts(summary: dict[str, Any]) -> Counts:
    """The interval counts a summary was made from (`aggregation.summarize`)."""
    return {
        "messages": summary["interval_messages_consumed"],
        "invalid": summary["interval_invalid_message_count"],
        "late": summary["interval_late_message_count"],
        "missing": summary["interval_missing_field_count"],
        "device_types": summary["interval_device_type_count"],
    }
