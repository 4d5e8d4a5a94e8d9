"""The equality check: a drain counts only if the pipeline published exactly what the
baseline computed from the same data (`baseline`), and every pre-loaded message is accounted
for."""

from __future__ import annotations

from typing import Any, Final

import orjson

# Every message is counted in exactly one of these per interval.
COUNTED_FIELDS: Final = (
    "interval_messages_consumed",
    "interval_invalid_message_count",
    "interval_late_message_count",
)


def with_data(summaries: list[dict[str, Any]], last_start_s: int) -> list[dict[str, Any]]:
    """The summaries up to the last interval with data, without the empty ones after it that
    the processor publishes on its wall clock."""
    return [s for s in summaries if s["timestamp_start"] <= last_start_s]


def counted(summaries: list[dict[str, Any]]) -> int:
    return sum(int(s[field]) for s in summaries for field in COUNTED_FIELDS)


def problems(
    label: str, summaries: list[dict[str, Any]], reference: list[dict[str, Any]], events: int
) -> str | None:
    """None if `summaries` equal `reference` and account for `events` messages, else a
    description of the first difference."""
    for index, (got, want) in enumerate(zip(summaries, reference, strict=False)):
        if got != want:
            return _diff(label, index, got, want)
    if len(summaries) != len(reference):
        extra = summaries[len(reference) :] or reference[len(summaries) :]
        return (
            f"{label}: {len(summaries)} intervals, baseline {len(reference)}; "
            f"first unmatched: {_show(extra[0])}"
        )
    total = counted(summaries)
    if total != events:
        return f"{label}: the intervals count {total} messages, {events} were pre-loaded"
    return None


def _diff(label: str, index: int, got: dict[str, Any], want: dict[str, Any]) -> str:
    lines = [f"{label}: interval #{index} differs from the baseline's"]
    for field in sorted(got.keys() | want.keys()):
        if got.get(field) != want.get(field):
            lines.append(
                f"  {field}: {label} {_show(got.get(field))}  baseline {_show(want.get(field))}"
            )
    lines.append(f"  {label}:  {_show(got)}")
    lines.append(f"  baseline: {_show(want)}")
    return "\n".join(lines)


def _show(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
