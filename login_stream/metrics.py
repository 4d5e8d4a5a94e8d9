"""Prometheus metrics of the processor, at `/metrics` on the health port.

Derived from what the pipeline counts anyway: the login, invalid and late counts from each
published summary, the dead letters as they are written (rare by nature), how far the merge
is held back from its state after each partial, and readiness asked at each scrape; nothing
is added to the work done per valid event. The counters are the process's own: they start at 0
when it starts, the merge's counters live in the instance that owns the merge, and
Prometheus sums the instances. (An interval whose commit failed and is published again after
a restart is counted again by the new process, not twice by one.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.logins = Counter(
            "login_stream_logins", "Logins counted in published summaries", registry=self.registry
        )
        self.invalid = Counter(
            "login_stream_invalid_messages",
            "Invalid messages counted in published summaries",
            registry=self.registry,
        )
        self.late = Counter(
            "login_stream_late_messages",
            "Late messages counted in published summaries",
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "login_stream_dead_letters",
            "Messages written to the dead-letter topic, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.misplaced_partials = Counter(
            "login_stream_misplaced_partials",
            "Partials of one input partition counted as late in the next interval instead of "
            "their own (see the merge rule)",
            registry=self.registry,
        )
        self.summaries = Counter(
            "login_stream_summaries_published",
            "Interval summaries published",
            registry=self.registry,
        )
        self.last_interval_end = Gauge(
            "login_stream_last_published_interval_end_seconds",
            "End (epoch seconds) of the last interval published",
            registry=self.registry,
        )
        self.merge_held_back = Gauge(
            "login_stream_merge_held_back_seconds",
            "How far the merge holds summaries back waiting for input partitions: event-time "
            "seconds from the oldest interval it holds to the newest (0 while it holds at most "
            "one); set after each partial by the instance that owns the merge",
            registry=self.registry,
        )
        self.ready = Gauge(
            "login_stream_ready",
            "1 while GET /ready answers ready, else 0; asked at each scrape",
            registry=self.registry,
        )
        self.ready.set_function(lambda: 0.0)

    def report_readiness(self, check: Callable[[], tuple[bool, str]]) -> None:
        """`login_stream_ready` answers what `check` (the `/ready` endpoint's) answers, when
        scraped."""
        self.ready.set_function(lambda: 1.0 if check()[0] else 0.0)

    def summary_published(self, summary: dict[str, Any]) -> None:
        self.logins.inc(summary["interval_messages_consumed"])
        self.invalid.inc(summary["interval_invalid_message_count"])
        self.late.inc(summary["interval_late_message_count"])
        self.summaries.inc()
        self.last_interval_end.set(summary["timestamp_end"])

    def dead_letter_written(self, reason: str) -> None:
        self.dead_letters.labels(reason=reason).inc()

    def merge_held_back_by(self, seconds: float) -> None:
        self.merge_held_back.set(seconds)

    def partials_misplaced(self, count: int) -> None:
        if count:
            self.misplaced_partials.inc(count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
