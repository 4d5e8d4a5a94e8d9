"""What an operator reads off a running processor: Prometheus metrics and JSON logs (real
broker, real process)."""

from __future__ import annotations

import signal
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.scenario import new_scenario
from tests.support import (
    Processor,
    Topics,
    produce,
    running_processor,
    summary_reader,
    topic_reader,
)


def scrape(processor: Processor) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{processor.health_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_exactly_what_was_published_and_dead_lettered(
    topics: Topics, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=31)
    for index in range(4):
        scenario.add_window_events(index, count=scenario.rng.randint(30, 80), garbage_rate=0.1)
    assert scenario.add_delayed_event(scenario.window(0).start + 1.0)
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected()

    with (
        summary_reader(topics) as reader,
        topic_reader(topics.bootstrap, topics.dlq) as dlq,
        running_processor(topics, tmp_path / "state", tmp_path / "processor.log") as processor,
    ):
        reader.wait_for_interval(expected[-1]["timestamp_start"])
        dlq.wait_for(len(scenario.dead_letters))
        metrics = scrape(processor)
        assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()
        dlq.read_to_end()

    last = expected[-1]
    assert metrics[("login_stream_logins_total", ())] == last["total_messages_consumed"]
    assert (
        metrics[("login_stream_invalid_messages_total", ())] == last["total_invalid_message_count"]
    )
    assert metrics[("login_stream_late_messages_total", ())] == last["total_late_message_count"]
    reasons = Counter(dict(m.headers() or [])["dlq-reason"].decode() for m in dlq.messages)
    assert {
        labels[0][1]: value
        for (name, labels), value in metrics.items()
        if name == "login_stream_dead_letters_total"
    } == reasons
    # Every summary published up to the last interval end the metrics saw, and no other.
    last_end = metrics[("login_stream_last_published_interval_end_seconds", ())]
    published = [s for s in reader.summaries if s["timestamp_end"] <= last_end]
    assert metrics[("login_stream_summaries_published_total", ())] == len(published)


def test_json_logs_are_one_object_per_line_from_every_component(
    topics: Topics, tmp_path: Path
) -> None:
    with running_processor(
        topics, tmp_path / "state", tmp_path / "processor.log", LOG_FORMAT="json"
    ) as processor:
        processor.wait_until_ready()
        assert processor.stop(signal.SIGTERM) == 0, processor.log()
        lines = processor.log().splitlines()

    entries = [orjson.loads(line) for line in lines if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    loggers = {entry["logger"].split(".")[0] for entry in entries}
    assert {"login_stream", "quixstreams"} <= loggers
