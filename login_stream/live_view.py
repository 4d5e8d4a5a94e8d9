"""A terminal view of the summaries as they are published: `python -m login_stream.live_view`.

It reads `user-login-processed` like any downstream consumer would (read_committed, its own
throw-away group) and redraws a table of the latest intervals with rich.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections import deque
from typing import Any, Final
from uuid import uuid4

import orjson
from confluent_kafka import Consumer, KafkaError
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .connection import client_config
from .settings import ConfigError, Settings, load_settings

ROWS_SHOWN: Final = 15
POLL_SECONDS: Final = 0.5
REFRESHES_PER_SECOND: Final = 4
COLUMNS: Final = (
    "interval (epoch s)",
    "logins",
    "device types",
    "missing",
    "invalid",
    "late",
    "total",
)


def _tally(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) or "-"


def render(summaries: deque[dict[str, Any]], settings: Settings) -> Group:
    table = Table(title=f"{settings.output_topic} @ {settings.kafka_bootstrap_servers}")
    for column in COLUMNS:
        table.add_column(column)
    for summary in summaries:
        table.add_row(
            f"{summary['timestamp_start']}-{summary['timestamp_end']}",
            str(summary["interval_messages_consumed"]),
            _tally(summary["interval_device_type_count"]),
            _tally(summary["interval_missing_field_count"]),
            str(summary.get("interval_invalid_message_count", 0)),
            str(summary.get("interval_late_message_count", 0)),
            str(summary["total_messages_consumed"]),
        )
    latest = summaries[-1] if summaries else None
    footer = (
        Text(
            f"totals: {latest['total_messages_consumed']} logins | device types "
            f"{_tally(latest['total_device_type_count'])} | missing "
            f"{_tally(latest['total_missing_field_count'])} | invalid "
            f"{latest.get('total_invalid_message_count', 0)} | late "
            f"{latest.get('total_late_message_count', 0)}"
        )
        if latest
        else Text("waiting for the first closed interval...")
    )
    return Group(table, footer, Text("Ctrl-C to stop", style="dim"))


def watch(settings: Settings) -> None:
    consumer = Consumer(
        {
            **client_config(settings),
            "group.id": f"login-stream-live-view-{uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.output_topic])
    summaries: deque[dict[str, Any]] = deque(maxlen=ROWS_SHOWN)
    try:
        with Live(render(summaries, settings), refresh_per_second=REFRESHES_PER_SECOND) as live:
            while True:
                message = consumer.poll(POLL_SECONDS)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    # The topic appears once the processor closes its first interval.
                    if error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        live.console.print(f"[yellow]consumer: {error}")
                    continue
                summaries.append(orjson.loads(message.value()))
                live.update(render(summaries, settings))
    finally:
        consumer.close()


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"live_view: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        watch(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
