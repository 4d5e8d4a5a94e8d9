"""Test helpers for the summary table: a real PostgreSQL server's rows, the sink as a user runs
it (`python -m login_stream.sink` in a subprocess), and summaries of a known series."""

from __future__ import annotations

import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2

from devtools.local_postgres import LocalPostgres
from tests.spec import SUMMARY_FIELDS
from tests.support import POLL_SECONDS, SUMMARY_WAIT_SECONDS, Program, Topics, encode, produce

DEVICE_TYPES = ("android", "iOS", "web")
MISSING_FIELDS = ("app_version", "locale", "device_id")


class Sink(Program):
    """`python -m login_stream.sink`."""

    name = "sink"

    def __init__(
        self, topics: Topics, server: LocalPostgres, table: str, log_path: Path, **settings: str
    ) -> None:
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": topics.bootstrap,
            "OUTPUT_TOPIC": topics.output,
            "CONSUMER_GROUP": topics.consumer_group,
            "POSTGRES_TABLE": table,
            "COMMIT_INTERVAL_SECONDS": "0.5",
            # Quix's own, unused by the sink; apart from a processor's beside the same log.
            "STATE_DIR": str(log_path.parent / f"{log_path.stem}-state"),
            **server.settings(),
            **{name.upper(): value for name, value in settings.items()},
        }
        super().__init__([sys.executable, "-m", "login_stream.sink"], env, log_path)


@contextmanager
def running_sink(
    topics: Topics, server: LocalPostgres, table: str, log_path: Path, **settings: str
) -> Iterator[Sink]:
    sink = Sink(topics, server, table, log_path, **settings)
    try:
        yield sink
    finally:
        if sink.running():
            sink.stop()


def publish(topics: Topics, summaries: list[dict[str, Any]]) -> None:
    """Summaries onto the summary topic, as the processor publishes them."""
    produce(
        topics.bootstrap,
        topics.output,
        ((encode(s), s["timestamp_end"] * 1000) for s in summaries),
    )


def new_table() -> str:
    return f"summaries_{uuid.uuid4().hex[:10]}"


def rows(server: LocalPostgres, table: str) -> list[dict[str, Any]]:
    """Every row of `table`, as the summary's fields, in time order; none before the sink
    has made the table."""
    connection = psycopg2.connect(**server.connection())
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", (table,))
            if cursor.fetchone() == (None,):
                return []
            fields = ", ".join(SUMMARY_FIELDS + EXTRA_FIELDS)
            cursor.execute(f"SELECT {fields} FROM {table} ORDER BY timestamp_start")
            return [dict(zip(SUMMARY_FIELDS + EXTRA_FIELDS, row, strict=True)) for row in cursor]
    finally:
        connection.close()


# Our fields beyond the upstream eight.
EXTRA_FIELDS = (
    "interval_invalid_message_count",
    "total_invalid_message_count",
    "interval_late_message_count",
    "total_late_message_count",
)


def wait_until(
    condition: Callable[[], bool], what: str, timeout: float = SUMMARY_WAIT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(POLL_SECONDS)


def random_summaries(seed: int, count: int, window_seconds: int = 10) -> list[dict[str, Any]]:
    """A series of `count` consecutive summaries with random counts and continuous totals,
    written out field by field as the output schema names them."""
    rng = random.Random(seed)
    start = rng.randrange(1_700_000_000, 1_800_000_000) // window_seconds * window_seconds
    total_messages = total_invalid = total_late = 0
    total_missing: dict[str, int] = {}
    total_devices: dict[str, int] = {}
    series = []
    for index in range(count):
        devices = {d: rng.randint(1, 50) for d in DEVICE_TYPES if rng.random() < 0.8}
        missing = {f: rng.randint(1, 5) for f in MISSING_FIELDS if rng.random() < 0.3}
        invalid, late = rng.randint(0, 3), rng.randint(0, 2)
        total_messages += sum(devices.values())
        total_invalid += invalid
        total_late += late
        total_missing = _added(total_missing, missing)
        total_devices = _added(total_devices, devices)
        begin = start + index * window_seconds
        series.append(
            {
                "timestamp_start": begin,
                "timestamp_end": begin + window_seconds,
                "interval_messages_consumed": sum(devices.values()),
                "total_messages_consumed": total_messages,
                "interval_missing_field_count": missing,
                "interval_device_type_count": devices,
                "total_missing_field_count": total_missing,
                "total_device_type_count": total_devices,
                "interval_invalid_message_count": invalid,
                "total_invalid_message_count": total_invalid,
                "interval_late_message_count": late,
                "total_late_message_count": total_late,
            }
        )
    return series


def _added(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {key: total.get(key, 0) + more.get(key, 0) for key in total.keys() | more.keys()}
