"""Known input for the broker tests, and the summaries the pipeline must make of it.

The expected values are tallied here directly from the generated events, independently of
the pipeline's own aggregation code.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Producer

from tests.spec import UPSTREAM_FIELDS
from tests.support import encode

WINDOW_SECONDS = 10
GRACE_SECONDS = 2
MS = 1000
# Differing summaries a failed comparison shows before the last one.
DIFFERENCES_SHOWN = 3
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
    late: int = 0
    device_types: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)

    def count_login(self, device: str | None, missing: list[str]) -> None:
        self.messages += 1
        self.missing.update(missing)
        if device is not None:
            self.device_types[CANONICAL[device]] += 1


@dataclass
class Scenario:
    """Messages spread over consecutive windows, in the order they will be produced."""

    rng: random.Random
    first_window: int
    window_seconds: int = WINDOW_SECONDS
    messages: list[tuple[bytes | None, int]] = field(default_factory=list)
    windows: dict[int, Window] = field(default_factory=dict)
    # (original value, reason, offset in a fresh one-partition input topic)
    dead_letters: list[tuple[bytes | None, str, int]] = field(default_factory=list)
    # The latest time the pipeline has seen after the messages so far (epoch ms).
    watermark_ms: int = 0

    def window(self, index: int) -> Window:
        start = self.first_window + index * self.window_seconds
        return self.windows.setdefault(start, Window(start))

    def add_window_events(self, index: int, count: int, garbage_rate: float = 0.0) -> None:
        start = self.window(index).start
        moments = sorted(start + self.rng.uniform(0, self.window_seconds) for _ in range(count))
        for moment in moments:
            self.add_message_at(moment, garbage_rate)

    def add_message_at(self, moment: float, garbage_rate: float = 0.0) -> tuple[bytes | None, int]:
        """Add one message created at `moment` (epoch s); returns its value and timestamp."""
        start = int(moment) - int(moment) % self.window_seconds
        window = self.windows.setdefault(start, Window(start))
        timestamp_ms = int(moment * MS)
        self.watermark_ms = max(self.watermark_ms, timestamp_ms)
        if self.rng.random() < garbage_rate:
            raw, reason = self.rng.choice(GARBAGE)
            self.dead_letters.append((raw, reason, len(self.messages)))
            self.messages.append((raw, timestamp_ms))
            window.invalid += 1
            return raw, timestamp_ms
        event, device, missing = self._event(int(moment))
        value = encode(event)
        self.messages.append((value, timestamp_ms))
        window.count_login(device, missing)
        return value, timestamp_ms

    def add_event_from_a_clock_ahead(self, moment: float, ahead_seconds: int) -> None:
        """Add a valid event written at `moment` whose own timestamp claims `ahead_seconds`
        later: a wrong clock, so it is counted in the interval of its Kafka timestamp."""
        assert ahead_seconds > GRACE_SECONDS
        event, device, missing = self._event(int(moment) + ahead_seconds, keep_timestamp=True)
        timestamp_ms = int(moment * MS)
        self.watermark_ms = max(self.watermark_ms, timestamp_ms)
        self.messages.append((encode(event), timestamp_ms))
        start = int(moment) - int(moment) % self.window_seconds
        self.windows.setdefault(start, Window(start)).count_login(device, missing)

    def add_delayed_event(self, moment: float) -> bool:
        """Add a valid event created at `moment` but delivered now, after everything so far
        (its Kafka timestamp is the latest time seen). Returns whether it is *late*: its
        interval closed once time passed the interval's end by the grace period, so it is
        counted as late in the interval open now, and dead-lettered."""
        event, device, missing = self._event(int(moment), keep_timestamp=True)
        value = encode(event)
        start = int(moment) - int(moment) % self.window_seconds
        interval_end_ms = (start + self.window_seconds) * MS
        offset = len(self.messages)
        self.messages.append((value, self.watermark_ms))
        if interval_end_ms <= self.watermark_ms - GRACE_SECONDS * MS:
            now_seconds = self.watermark_ms // MS
            now_start = now_seconds - now_seconds % self.window_seconds
            self.windows.setdefault(now_start, Window(now_start)).late += 1
            self.dead_letters.append((value, "late", offset))
            return True
        self.windows.setdefault(start, Window(start)).count_login(device, missing)
        return False

    def _event(
        self, seconds: int, keep_timestamp: bool = False
    ) -> tuple[dict[str, Any], str | None, list[str]]:
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
            for name in UPSTREAM_FIELDS
            if rng.random() < (0.15 if name == "device_type" else 0.04)
            and not (keep_timestamp and name == "timestamp")
        ]
        for name in missing:
            blank = rng.choice(["absent", None, ""])
            if blank == "absent":
                del event[name]
            else:
                event[name] = blank
        return event, (None if "device_type" in missing else device), missing

    def expected(self, up_to_window: int | None = None) -> list[dict[str, Any]]:
        summaries = []
        messages = invalid = late = 0
        devices: Counter[str] = Counter()
        missing: Counter[str] = Counter()
        # Intervals without a message between the first and the last are published too.
        grid = range(min(self.windows), max(self.windows) + 1, self.window_seconds)
        for start in list(grid)[:up_to_window]:
            window = self.windows.get(start, Window(start))
            messages += window.messages
            invalid += window.invalid
            late += window.late
            devices += window.device_types
            missing += window.missing
            summaries.append(
                {
                    "timestamp_start": start,
                    "timestamp_end": start + self.window_seconds,
                    "interval_messages_consumed": window.messages,
                    "total_messages_consumed": messages,
                    "interval_missing_field_count": dict(window.missing),
                    "interval_device_type_count": dict(window.device_types),
                    "total_missing_field_count": dict(missing),
                    "total_device_type_count": dict(devices),
                    "interval_invalid_message_count": window.invalid,
                    "total_invalid_message_count": invalid,
                    "interval_late_message_count": window.late,
                    "total_late_message_count": late,
                }
            )
        return summaries


def new_scenario(seed: int) -> Scenario:
    """A scenario well in the past, on the window grid, so every bound is known in advance;
    the processor's clock closes all of its windows as soon as it has read them."""
    now = int(time.time())
    first = now - now % WINDOW_SECONDS - 100 * WINDOW_SECONDS
    return Scenario(rng=random.Random(seed), first_window=first)


def assert_series(summaries: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """The expected summaries, and around them only what the processor's clock adds: empty
    intervals from its start up to the first event, and after the last event up to now.
    The whole series is contiguous; an empty interval never changes the totals."""
    first = expected[0]["timestamp_start"]
    lead = next(i for i, s in enumerate(summaries) if s["timestamp_start"] == first)
    published = summaries[lead : lead + len(expected)]
    assert published == expected, _differences(published, expected)
    for previous, summary in itertools.pairwise(summaries):
        assert summary["timestamp_start"] == previous["timestamp_end"]
    for index, summary in enumerate(summaries):
        if lead <= index < lead + len(expected):
            continue
        assert summary["interval_messages_consumed"] == 0
        assert summary["interval_invalid_message_count"] == 0
        assert summary["interval_late_message_count"] == 0
        assert summary["interval_device_type_count"] == {}
        assert summary["interval_missing_field_count"] == {}
        before = expected[-1] if index > lead else None
        assert _totals(summary) == (_totals(before) if before else _totals(_empty_totals()))


def counted(summary: dict[str, Any]) -> int:
    """Every message counted so far: as a login, as invalid or as late."""
    return int(
        summary["total_messages_consumed"]
        + summary["total_invalid_message_count"]
        + summary["total_late_message_count"]
    )


def counted_in_interval(summary: dict[str, Any]) -> int:
    return int(
        summary["interval_messages_consumed"]
        + summary["interval_invalid_message_count"]
        + summary["interval_late_message_count"]
    )


def _differences(published: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    """Where the published series differs from the expected one, field by field."""
    if len(published) != len(expected):
        return f"{len(published)} summaries published where {len(expected)} were expected"
    differences = [
        f"summary {index} of {len(expected)} (published, expected): "
        + str({name: (got.get(name), want[name]) for name in want if got.get(name) != want[name]})
        for index, (got, want) in enumerate(zip(published, expected, strict=True))
        if got != want
    ]
    # The first few, and the last: where counts went missing, and where they ended up.
    return "\n".join([*differences[:DIFFERENCES_SHOWN], *differences[DIFFERENCES_SHOWN:][-1:]])


def _totals(summary: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in summary.items() if name.startswith("total_")}


def _empty_totals() -> dict[str, Any]:
    return {
        "total_messages_consumed": 0,
        "total_missing_field_count": {},
        "total_device_type_count": {},
        "total_invalid_message_count": 0,
        "total_late_message_count": 0,
    }


class RealTimeProducer(threading.Thread):
    """Produces the scenario's events paced to a rate, each stamped with its creation time."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        scenario: Scenario,
        count: int,
        rate: float,
        garbage_rate: float = 0.0,
    ) -> None:
        super().__init__(daemon=True)
        self._rate = rate
        self._garbage_rate = garbage_rate
        self._producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self._topic = topic
        self._scenario = scenario
        self._count = count
        self.failed: list[str] = []

    def run(self) -> None:
        started = time.monotonic()
        for sent in range(self._count):
            # Pacing is the load profile here, not a wait for a condition.
            ahead = sent / self._rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
            value, timestamp_ms = self._scenario.add_message_at(time.time(), self._garbage_rate)
            self._producer.produce(
                self._topic, value=value, timestamp=timestamp_ms, on_delivery=self._delivered
            )
            self._producer.poll(0)
        assert self._producer.flush(120) == 0

    def _delivered(self, error: object, _message: object) -> None:
        if error is not None:
            self.failed.append(str(error))
