"""`make compose-check`: the compose stack through what a user does with it every day.

Brings the stack up, waits until every service is healthy and reads the summaries from the host
listener (localhost:29092) as a downstream consumer would; then restarts the processor, stops
and starts the broker and then the database, takes the stack down and up again without `-v`,
scales the processor to three replicas, and finally takes it down with `-v`. After every step
the series read so far must hold: the upstream fields present, contiguous intervals, each
published once, and every total equal to the previous total plus the interval (so totals
continue across every step instead of restarting or jumping); and the summary table in
PostgreSQL (localhost:55432) must hold every interval read, once, equal to the topic. Exit code
0 only when every step holds.

Needs a Docker engine with compose and the base images (`docker-standins up` on a machine
without a registry). Not part of `make test`.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
import uuid
from collections import Counter
from typing import Any, Final

import orjson
import psycopg2
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

BOOTSTRAP: Final = "localhost:29092"
OUTPUT_TOPIC: Final = "user-login-processed"
HEALTHY_TIMEOUT_SECONDS: Final = 240.0
# After `down`/`up` the new containers' static group members wait out the old ones' session
# (45 s), so summaries may pause that long before they continue.
PROGRESS_TIMEOUT_SECONDS: Final = 150.0
POLL_SECONDS: Final = 1.0
DATABASE: Final[dict[str, Any]] = {
    "host": "localhost",
    "port": 55432,
    "user": "login_stream",
    "password": "login-stream",
    "dbname": "login_stream",
    "connect_timeout": 5,
}
TABLE: Final = "login_summaries"
SUMMARY_FIELDS: Final = (
    "timestamp_start",
    "timestamp_end",
    "interval_messages_consumed",
    "total_messages_consumed",
    "interval_missing_field_count",
    "interval_device_type_count",
    "total_missing_field_count",
    "total_device_type_count",
    "interval_invalid_message_count",
    "total_invalid_message_count",
    "interval_late_message_count",
    "total_late_message_count",
)
TALLIES: Final = (
    ("interval_messages_consumed", "total_messages_consumed"),
    ("interval_invalid_message_count", "total_invalid_message_count"),
    ("interval_late_message_count", "total_late_message_count"),
)
DICT_TALLIES: Final = (
    ("interval_missing_field_count", "total_missing_field_count"),
    ("interval_device_type_count", "total_device_type_count"),
)


# What a reader sees while the broker restarts or before the processor created the topic.
PASSING_ERRORS: Final = (
    KafkaError._PARTITION_EOF,
    KafkaError._TRANSPORT,
    KafkaError._ALL_BROKERS_DOWN,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
)


class CheckFailed(Exception):
    """A step did not hold; the message says which and why."""


def compose(*args: str, timeout: float = 600.0) -> str:
    result = subprocess.run(
        ["docker", "compose", *args], capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise CheckFailed(f"docker compose {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def wait_healthy(processors: int) -> None:
    """Until the broker and `processors` processor replicas report healthy."""
    deadline = time.monotonic() + HEALTHY_TIMEOUT_SECONDS
    states: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        lines = compose("ps", "--format", "json").splitlines()
        containers = [orjson.loads(line) for line in lines if line.strip()]
        states = [(c["Service"], c.get("Health") or c["State"]) for c in containers]
        healthy = Counter(service for service, health in states if health == "healthy")
        if healthy["kafka"] == 1 and healthy["processor"] == processors:
            return
        time.sleep(POLL_SECONDS)
    raise CheckFailed(f"not healthy within {HEALTHY_TIMEOUT_SECONDS:.0f} s: {states}")


class SummaryReader:
    """A read_committed consumer of the summaries, from the host listener. It reads the
    topic's partitions by assignment, not as a group member: a member's place in its group
    can be lost across the broker's restart (seen once: the member removed 45 s after the
    restart, and nothing read after it)."""

    def __init__(self) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"compose-check-{uuid.uuid4().hex[:8]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                # The broker is stopped on purpose; its absence is not worth a log line.
                "log_level": 2,
            }
        )
        self._assigned = False
        self.summaries: list[dict[str, Any]] = []

    def read_more(self, count: int) -> None:
        """Read until `count` more summaries with logins in them have arrived."""
        wanted = self._with_logins() + count
        deadline = time.monotonic() + PROGRESS_TIMEOUT_SECONDS
        while self._with_logins() < wanted:
            if time.monotonic() > deadline:
                raise CheckFailed(f"no {count} new summaries within {PROGRESS_TIMEOUT_SECONDS} s")
            if not self._assign_once_made():
                time.sleep(POLL_SECONDS)
                continue
            message = self._consumer.poll(POLL_SECONDS)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() in PASSING_ERRORS:
                    continue
                raise CheckFailed(f"reading summaries: {error}")
            self.summaries.append(orjson.loads(message.value()))

    def _assign_once_made(self) -> bool:
        """Whether the reader reads: its partitions are assigned once the processor has made
        the topic."""
        if self._assigned:
            return True
        try:
            topic = self._consumer.list_topics(OUTPUT_TOPIC, timeout=POLL_SECONDS).topics.get(
                OUTPUT_TOPIC
            )
        except KafkaException:
            return False
        if topic is None or topic.error is not None or not topic.partitions:
            return False
        self._consumer.assign(
            [TopicPartition(OUTPUT_TOPIC, p, OFFSET_BEGINNING) for p in topic.partitions]
        )
        self._assigned = True
        return True

    def close(self) -> None:
        self._consumer.close()

    def _with_logins(self) -> int:
        return sum(1 for s in self.summaries if s["interval_messages_consumed"])


def check_series(summaries: list[dict[str, Any]]) -> None:
    if not summaries:
        raise CheckFailed("no summaries")
    for summary in summaries:
        missing = [field for field in SUMMARY_FIELDS if field not in summary]
        if missing:
            raise CheckFailed(f"summary without {missing}: {summary}")
    for before, after in itertools.pairwise(summaries):
        if after["timestamp_start"] != before["timestamp_end"]:
            raise CheckFailed(f"not contiguous (a gap or a repeat): {before} then {after}")
        for interval, total in TALLIES:
            if after[total] != before[total] + after[interval]:
                raise CheckFailed(f"{total} does not add up: {before} then {after}")
        for interval, total in DICT_TALLIES:
            expected = Counter(before[total]) + Counter(after[interval])
            if Counter(after[total]) != expected:
                raise CheckFailed(f"{total} does not add up: {before} then {after}")


def table_rows() -> dict[int, dict[str, Any]]:
    """The summary table's rows by interval start; none while the database is not up."""
    try:
        connection = psycopg2.connect(**DATABASE)
    except psycopg2.OperationalError:
        return {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass(%s)", (TABLE,))
            if cursor.fetchone() == (None,):
                return {}
            cursor.execute(f"SELECT {', '.join(SUMMARY_FIELDS)} FROM {TABLE}")
            return {row[0]: dict(zip(SUMMARY_FIELDS, row, strict=True)) for row in cursor}
    finally:
        connection.close()


def check_table(summaries: list[dict[str, Any]]) -> None:
    """Until the table holds every summary read from the topic, equal to it."""
    wanted = {summary["timestamp_start"]: summary for summary in summaries}
    deadline = time.monotonic() + PROGRESS_TIMEOUT_SECONDS
    while True:
        rows = table_rows()
        different = [start for start, summary in wanted.items() if rows.get(start) != summary]
        if not different:
            return
        if time.monotonic() > deadline:
            first = different[0]
            raise CheckFailed(
                f"the table lacks or differs on {len(different)} intervals, e.g. "
                f"{wanted[first]} against {rows.get(first)}"
            )
        time.sleep(POLL_SECONDS)


def step(name: str, reader: SummaryReader, action: list[list[str]], processors: int) -> None:
    started = time.monotonic()
    for args in action:
        compose(*args)
    wait_healthy(processors)
    reader.read_more(2)
    check_series(reader.summaries)
    check_table(reader.summaries)
    last = reader.summaries[-1]
    print(
        f"ok  {name:<34} {time.monotonic() - started:5.0f} s  "
        f"{len(reader.summaries):4d} summaries, total logins {last['total_messages_consumed']}",
        flush=True,
    )


def main() -> int:
    print("compose-check: building and starting the stack ...", flush=True)
    try:
        compose("down", "-v")
        reader = SummaryReader()
        try:
            step("up --build", reader, [["up", "--build", "-d"]], 1)
            step("restart processor", reader, [["restart", "processor"]], 1)
            step("broker stop, start", reader, [["stop", "kafka"], ["start", "kafka"]], 1)
            step("database stop, start", reader, [["stop", "postgres"], ["start", "postgres"]], 1)
            step("down, up (no -v): totals go on", reader, [["down"], ["up", "-d"]], 1)
            step("--scale processor=3", reader, [["up", "-d", "--scale", "processor=3"]], 3)
        finally:
            reader.close()
        compose("down", "-v")
        volumes = subprocess.run(
            ["docker", "volume", "ls", "--format", "{{.Name}}"], capture_output=True, text=True
        ).stdout.split()
        left = [
            name
            for name in volumes
            if name.endswith(("_kafka-data", "_processor-state", "_postgres-data"))
        ]
        if left:
            raise CheckFailed(f"down -v left volumes behind: {left}")
        print("ok  down -v: volumes removed", flush=True)
    except (CheckFailed, subprocess.TimeoutExpired) as exc:
        print(f"compose-check FAILED: {exc}", file=sys.stderr)
        return 1
    print("compose-check passed", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
