"""The processor end to end on a real broker: known events in, exact summaries out."""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from login_stream.events import EXPECTED_FIELDS
from tests.support import Topics, encode, produce, running_processor, summary_reader

WINDOW_SECONDS = 10
MS = 1000
CANONICAL = {"android": "android", "iOS": "iOS", "ios": "iOS"}
EIGHT_FIELDS = [
    "timestamp_start",
    "timestamp_end",
    "interval_messages_consumed",
    "total_messages_consumed",
    "interval_missing_field_count",
    "interval_device_type_count",
    "total_missing_field_count",
    "total_device_type_count",
]


@dataclass
class Window:
    start: int
    messages: int = 0
    device_types: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)


@dataclass
class Scenario:
    """Events spread over consecutive windows, and what the pipeline must make of them."""

    rng: random.Random
    first_window: int
    messages: list[tuple[bytes, int]] = field(default_factory=list)
    windows: dict[int, Window] = field(default_factory=dict)

    def add_window_events(self, index: int, count: int) -> None:
        start = self.first_window + index * WINDOW_SECONDS
        window = self.windows.setdefault(start, Window(start))
        times = sorted(start + self.rng.uniform(0, WINDOW_SECONDS) for _ in range(count))
        for moment in times:
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
        messages = 0
        devices: Counter[str] = Counter()
        missing: Counter[str] = Counter()
        for start in sorted(self.windows)[:up_to_window]:
            window = self.windows[start]
            messages += window.messages
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
                }
            )
        return summaries


def new_scenario(seed: int) -> Scenario:
    # Well in the past, aligned to the window grid, so every bound is known in advance.
    now = int(time.time())
    first = now - now % WINDOW_SECONDS - 100 * WINDOW_SECONDS
    return Scenario(rng=random.Random(seed), first_window=first)


def published_fields(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The eight fields of the published contract (extra fields are allowed beside them)."""
    return [{k: s[k] for k in EIGHT_FIELDS} for s in summaries]


def test_every_interval_is_summarised_exactly(
    topics: Topics, state_dir: Path, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=1)
    for index in range(5):
        scenario.add_window_events(index, count=scenario.rng.randint(5, 40))
    # One more event in a later window: Quix closes a window only when a later one starts.
    scenario.add_window_events(5, count=1)
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected(up_to_window=5)

    with summary_reader(topics) as reader:
        with running_processor(topics, state_dir, tmp_path / "processor.log") as processor:
            reader.wait_for(len(expected))
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        summaries = reader.read_to_end()

    assert published_fields(summaries) == expected
    assert all(s["interval_invalid_message_count"] == 0 for s in summaries)


def test_totals_continue_after_a_restart_with_an_empty_state_dir(
    topics: Topics, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=2)
    for index in range(3):
        scenario.add_window_events(index, count=scenario.rng.randint(5, 30))
    scenario.add_window_events(3, count=4)
    produce(topics.bootstrap, topics.input, scenario.messages)
    sent = len(scenario.messages)

    log = tmp_path / "processor.log"
    with summary_reader(topics) as reader:
        with running_processor(topics, tmp_path / "state-first", log) as processor:
            reader.wait_for(3)
            assert processor.stop(signal.SIGTERM) == 0, processor.log()

        for index in range(3, 6):
            scenario.add_window_events(index, count=scenario.rng.randint(5, 30))
        scenario.add_window_events(6, count=1)
        produce(topics.bootstrap, topics.input, scenario.messages[sent:])

        # A fresh state dir, as a new container without its volume: totals come back
        # from the changelog topic, not from local files.
        with running_processor(topics, tmp_path / "state-second", log) as processor:
            reader.wait_for(6)
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        summaries = reader.read_to_end()

    assert published_fields(summaries) == scenario.expected(up_to_window=6)
