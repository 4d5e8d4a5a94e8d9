"""Known input for the broker tests, and the summaries the pipeline must make of it.

The expected values are tallied here directly from the generated events, independently of
the pipeline's own aggregation code.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from login_stream.events import EXPECTED_FIELDS
from tests.support import encode

WINDOW_SECONDS = 10
MS = 1000
CANONICAL = {"android": "android", "iOS": "iOS", "ios": "iOS"}

# Every kind of unreadable message, with the reason the dead-letter queue must give.
GARBAGE: list[tuple[bytes | None, str]] = [
    (b"{not json", "invalid json"),
    (b"\xff\xfe\x00\x81", "not utf-8"),
    (b"[1, 2, 3]", "not a json object"),
    (b'"just a string"', "not a json object"),
    (None, "tombstone"),
    (encode({"timestamp": "yesterday", "device_type": "iOS"}), "bad field: timestamp"),
    (encode({"timestamp": 1, "device_type": 42}), "bad field: device_type"),
    (b'{"pad": "' + b"x" * 70_000 + b'"}', "oversized"),
]


@dataclass
class Window:
    start: int
    messages: int = 0
    invalid: int = 0
    device_types: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)


@dataclass
class Scenario:
    """Messages spread over consecutive windows, in the order they will be produced."""

    rng: random.Random
    first_window: int
    messages: list[tuple[bytes | None, int]] = field(default_factory=list)
    windows: dict[int, Window] = field(default_factory=dict)
    # (original value, reason, offset in a fresh one-partition input topic)
    dead_letters: list[tuple[bytes | None, str, int]] = field(default_factory=list)

    def window(self, index: int) -> Window:
        start = self.first_window + index * WINDOW_SECONDS
        return self.windows.setdefault(start, Window(start))

    def add_window_events(self, index: int, count: int, garbage_rate: float = 0.0) -> None:
        window = self.window(index)
        times = sorted(window.start + self.rng.uniform(0, WINDOW_SECONDS) for _ in range(count))
        for moment in times:
            if self.rng.random() < garbage_rate:
                raw, reason = self.rng.choice(GARBAGE)
                self.dead_letters.append((raw, reason, len(self.messages)))
                self.messages.append((raw, int(moment * MS)))
                window.invalid += 1
                continue
            event, device, missing = self._event(int(moment))
            self.messages.append((encode(event), int(moment * MS)))
            window.messages += 1
            window.missing.update(missing)
            if device is not None:
                window.device_types[CANONICAL[device]] += 1

    def _event(self, seconds: int) -> tuple[dict[str, Any], str | None, list[str]]:
        rng = self.rng
        device = rng.choice(list(CANONICAL))
        event: dict[str, Any] = {
            "user_id": f"user-{rng.randrange(10**6)}",
            "app_version": "2.3.0",
            "device_type": device,
            "ip": "10.0.0.1",
            "locale": rng.choice(["TX", "RU", "CA"]),
            "device_id": f"{rng.randrange(1000)}-47-5928",
            "timestamp": seconds if rng.random() < 0.5 else str(seconds),
        }
        missing = [
            name
            for name in EXPECTED_FIELDS
            if rng.random() < (0.15 if name == "device_type" else 0.04)
        ]
        for name in missing:
            blank = rng.choice(["absent", None, ""])
            if blank == "absent":
                del event[name]
            else:
                event[name] = blank
        return event, (None if "device_type" in missing else device), missing

    def expected(self, up_to_window: int) -> list[dict[str, Any]]:
        summaries = []
        messages = invalid = 0
        devices: Counter[str] = Counter()
        missing: Counter[str] = Counter()
        for start in sorted(self.windows)[:up_to_window]:
            window = self.windows[start]
            messages += window.messages
            invalid += window.invalid
            devices += window.device_types
            missing += window.missing
            summaries.append(
                {
                    "timestamp_start": start,
                    "timestamp_end": start + WINDOW_SECONDS,
                    "interval_messages_consumed": window.messages,
                    "total_messages_consumed": messages,
                    "interval_missing_field_count": dict(window.missing),
                    "interval_device_type_count": dict(window.device_types),
                    "total_missing_field_count": dict(missing),
                    "total_device_type_count": dict(devices),
                    "interval_invalid_message_count": window.invalid,
                    "total_invalid_message_count": invalid,
                }
            )
        return summaries


def new_scenario(seed: int, windows_from_now: int = -100) -> Scenario:
    """A scenario on the window grid, starting `windows_from_now` windows from the current one.

    In the past, the processor's clock closes every window of the scenario at once. In the
    future, windows close only as later events arrive, so a test controls exactly which are
    published, and events produced later are never late.
    """
    now = int(time.time())
    first = now - now % WINDOW_SECONDS + windows_from_now * WINDOW_SECONDS
    return Scenario(rng=random.Random(seed), first_window=first)


def assert_series(summaries: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The expected summaries, and around them only what the processor's clock adds: empty
    intervals from its start up to the first event, and after the last event up to now.
    The whole series is contiguous; an empty interval never changes the totals."""
    first = expected[0]["timestamp_start"]
    lead = next(i for i, s in enumerate(summaries) if s["timestamp_start"] == first)
    assert summaries[lead : lead + len(expected)] == expected
    for previous, summary in itertools.pairwise(summaries):
        assert summary["timestamp_start"] == previous["timestamp_end"]
    for index, summary in enumerate(summaries):
        if lead <= index < lead + len(expected):
            continue
        assert summary["interval_messages_consumed"] == 0
        assert summary["interval_invalid_message_count"] == 0
        assert summary["interval_device_type_count"] == {}
        assert summary["interval_missing_field_count"] == {}
        before = expected[-1] if index > lead else None
        assert _totals(summary) == (_totals(before) if before else _totals(_empty_totals()))


def _totals(summary: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in summary.items() if name.startswith("total_")}


def _empty_totals() -> dict[str, Any]:
    return {
        "total_messages_consumed": 0,
        "total_missing_field_count": {},
        "total_device_type_count": {},
        "total_invalid_message_count": 0,
    }
