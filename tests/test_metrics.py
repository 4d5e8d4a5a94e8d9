"""The metrics the alerts read, against known input (no Kafka): how far the merge holds
summaries back, set from its state after each partial, and readiness, asked at each scrape."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from login_stream.health import Progress
from login_stream.merge import Partial, merge_in_state
from login_stream.metrics import Metrics

ALERTS = (
    Path(__file__).resolve().parent.parent / "charts" / "login-stream" / "files" / "alerts.yaml"
)
SECOND = 1000
DURATION = 10 * SECOND
STALE = 30.0


class DictState:
    """The calls of Quix's `State` the merge makes, in a dict."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        del self.values[key]


def partial(partition: int, start_s: int, partitions: int = 3) -> Partial:
    return {
        "partition": partition,
        "partitions": partitions,
        "start_ms": start_s * SECOND,
        "end_ms": start_s * SECOND + DURATION,
        "counts": {"messages": 1, "invalid": 0, "late": 0, "device_types": {}, "missing": {}},
    }


def held_back(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("login_stream_merge_held_back_seconds")


def ready(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("login_stream_ready")


def test_the_merge_reports_how_far_a_silent_partition_holds_it_back() -> None:
    metrics = Metrics()
    state = DictState()
    assert held_back(metrics) == 0
    published = []
    # Partitions 0 and 1 report four intervals; partition 2 none of them.
    for start in (100, 110, 120, 130):
        for p in (0, 1):
            published += merge_in_state(partial(p, start), state, metrics)
    assert published == []
    assert held_back(metrics) == 30.0
    # Partition 2 catches up: everything is published, nothing is held any more.
    for start in (100, 110, 120, 130):
        published += merge_in_state(partial(2, start), state, metrics)
    assert [s["timestamp_start"] for s in published] == [100, 110, 120, 130]
    assert held_back(metrics) == 0


def test_the_interval_whose_partials_are_coming_in_is_not_held_back() -> None:
    metrics = Metrics()
    state = DictState()
    for start in (100, 110, 120):
        merge_in_state(partial(0, start), state, metrics)
        merge_in_state(partial(1, start), state, metrics)
        # One interval held, waiting for its last partition: the usual state.
        assert held_back(metrics) == 0
        assert merge_in_state(partial(2, start), state, metrics) != []
        assert held_back(metrics) == 0


def test_the_ready_gauge_answers_what_the_ready_endpoint_answers() -> None:
    now = [1000.0]
    progress = Progress(STALE, lambda: now[0])
    metrics = Metrics()
    assert ready(metrics) == 0  # no check attached yet: never taken for ready
    metrics.report_readiness(progress.ready)  # as the health server does
    seen = [(ready(metrics), progress.ready()[0])]
    progress.record_processed("user-login", 0, 1)
    seen.append((ready(metrics), progress.ready()[0]))
    now[0] += STALE - 1
    seen.append((ready(metrics), progress.ready()[0]))
    now[0] += 2  # no record for longer than HEALTH_STALE_SECONDS
    seen.append((ready(metrics), progress.ready()[0]))
    progress.record_processed("user-login", 0, 2)
    seen.append((ready(metrics), progress.ready()[0]))
    assert seen == [(0, False), (1, True), (1, True), (0, False), (1, True)]


def test_every_metric_the_alerts_read_is_one_the_processor_exports() -> None:
    exported = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in Metrics().registry.collect()
    }
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    read = {name for rule in rules for name in re.findall(r"login_stream_\w+", rule["expr"])}
    assert read == {
        "login_stream_last_published_interval_end_seconds",
        "login_stream_dead_letters_total",
        "login_stream_merge_held_back_seconds",
        "login_stream_ready",
    }
    assert read <= exported
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert set(rule["annotations"]) == {"summary", "runbook"}


def test_the_readme_gives_each_alert_with_its_runbook_line() -> None:
    readme = (ALERTS.parents[3] / "README.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line
        for line in readme.splitlines()
        if line.startswith("| `LoginStream")
    }
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    assert set(rows) == {rule["alert"] for rule in rules}
    for rule in rules:
        assert rows[rule["alert"]].endswith(f"| {rule['annotations']['runbook']} |")
        assert f"| {rule['labels']['severity']} |" in rows[rule["alert"]]
