"""Test helpers that talk to the real broker: producing events, running the processor as a
user would (`python app.py` in a subprocess), and reading the published summaries."""

from __future__ import annotations

import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.local_broker import free_port
from login_stream.logs import CONNECTION_LOSS_LINE_SECONDS, is_connection_loss

REPO = Path(__file__).resolve().parent.parent
# The one setting of the user's that reaches the tests: the broker to run them against.
BOOTSTRAP_VARIABLE = "KAFKA_BOOTSTRAP_SERVERS"
SUMMARY_WAIT_SECONDS = 90.0
SHUTDOWN_WAIT_SECONDS = 15.0
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Topics:
    bootstrap: str
    input: str
    output: str
    dlq: str
    consumer_group: str


def fresh_topics(bootstrap: str, input_partitions: int = 1) -> Topics:
    """New, created topics and an unused group name, so tests never see each other's
    messages or state."""
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(
        bootstrap=bootstrap,
        input=f"user-login-{suffix}",
        output=f"user-login-processed-{suffix}",
        dlq=f"user-login-dlq-{suffix}",
        consumer_group=f"login-stream-{suffix}",
    )
    create_topics(topics, input_partitions)
    return topics


def create_topics(topics: Topics, input_partitions: int = 1) -> None:
    create_topic(topics.bootstrap, topics.input, input_partitions)
    create_topic(topics.bootstrap, topics.output)
    create_topic(topics.bootstrap, topics.dlq)


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions)])
    futures[name].result()


def produce(
    bootstrap: str,
    topic: str,
    messages: Iterable[tuple[bytes | None, int]],
    partition_of: Callable[[int], int] | None = None,
) -> int:
    """Produce (value, timestamp_ms) pairs with random keys; returns how many were sent.

    `partition_of(index)` picks each message's partition; else the keys spread them."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    count = 0
    for value, timestamp_ms in messages:
        where = {} if partition_of is None else {"partition": partition_of(count)}
        producer.produce(
            topic, key=os.urandom(16).hex(), value=value, timestamp=timestamp_ms, **where
        )
        producer.poll(0)
        count += 1
    remaining = producer.flush(SUMMARY_WAIT_SECONDS)
    assert remaining == 0, f"{remaining} messages were not delivered"
    return count


def encode(event: Mapping[str, Any]) -> bytes:
    return orjson.dumps(event)


class TopicReader:
    """A read_committed consumer of every partition of one topic, from its beginning, as a
    downstream user would read it.

    It has no consumer group: it commits nothing, and a group would only add a coordinator to
    lose while brokers go away (a rejoin would read the topic from its start again anyway).
    The topic may not exist yet: its partitions are assigned once its metadata lists them."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                # librdkafka wants a group id even where nothing uses it.
                "group.id": f"reader-{os.urandom(6).hex()}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        self._assigned = False
        # Partitions read to their current end since their last message.
        self._at_end: set[int] = set()
        self._partitions = 0
        self.messages: list[Message] = []
        # Wall-clock time (epoch s) each message was received, as its reader saw it.
        self.arrivals: list[float] = []
        # What the consumer reported and recovered from.
        self.errors: list[str] = []

    @property
    def summaries(self) -> list[dict[str, Any]]:
        return [orjson.loads(message.value()) for message in self.messages]

    def close(self) -> None:
        self._consumer.close()

    def wait_for(self, count: int, timeout: float = SUMMARY_WAIT_SECONDS) -> None:
        """Read until at least `count` messages have arrived, or fail at the deadline."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, (
                f"only {len(self.messages)} of {count} messages within {timeout}s"
            )
            self._poll_once()

    def wait_for_interval(self, start: int, timeout: float = SUMMARY_WAIT_SECONDS) -> None:
        """Read until the summary of the interval starting at `start` (epoch s) has arrived."""
        self.wait_until(
            lambda summaries: any(s["timestamp_start"] >= start for s in summaries[-1:]),
            f"interval {start} published",
            timeout,
        )

    def wait_until(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        what: str,
        timeout: float = SUMMARY_WAIT_SECONDS,
    ) -> None:
        """Read until `done(summaries)` holds, or fail at the deadline naming `what`."""
        deadline = time.monotonic() + timeout
        while not done(self.summaries):
            assert time.monotonic() < deadline, (
                f"not {what} in {timeout}s; reader errors: {self.errors[-3:]}"
            )
            self._poll_once()

    def read_while(self, busy: Callable[[], bool]) -> None:
        """Keep reading (so arrival times are real) for as long as `busy()` holds."""
        while busy():
            self._poll_once()

    def read_to_end(self, timeout: float = SUMMARY_WAIT_SECONDS) -> None:
        """Read every committed message up to the end of the topic."""
        deadline = time.monotonic() + timeout
        while not self._poll_once(eof_ends=True):
            assert time.monotonic() < deadline, (
                f"topic end not reached; reader errors: {self.errors[-3:]}"
            )

    def _poll_once(self, eof_ends: bool = False) -> bool:
        if not self._assigned and not self._assign():
            time.sleep(POLL_SECONDS)  # the topic is not there yet: ask again in a moment
            return False
        message = self._consumer.poll(POLL_SECONDS)
        if message is None:
            return False
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                self._at_end.add(message.partition())
                return eof_ends and len(self._at_end) == self._partitions
            # librdkafka reports what it recovers from by itself (a leader that moved when a
            # broker went away): only a fatal error ends the reading.
            if error.fatal():
                raise AssertionError(f"consumer error: {error}")
            self.errors.append(str(error))
            return False
        self._at_end.discard(message.partition())
        self.messages.append(message)
        self.arrivals.append(time.time())
        return False

    def _assign(self) -> bool:
        """Assign every partition of the topic from its beginning, once the topic exists."""
        # All topics are listed, not just this one: a request naming a topic could create it.
        try:
            metadata = self._consumer.list_topics(timeout=POLL_SECONDS * 10)
        except KafkaException as error:  # no broker answered in time: ask again
            self.errors.append(str(error))
            return False
        listed = metadata.topics.get(self._topic)
        if listed is None or listed.error is not None or not listed.partitions:
            return False
        self._partitions = len(listed.partitions)
        self._consumer.assign(
            [TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in listed.partitions]
        )
        self._assigned = True
        return True


@contextmanager
def summary_reader(topics: Topics) -> Iterator[TopicReader]:
    with topic_reader(topics.bootstrap, topics.output) as reader:
        yield reader


@contextmanager
def topic_reader(bootstrap: str, topic: str) -> Iterator[TopicReader]:
    reader = TopicReader(bootstrap, topic)
    try:
        yield reader
    finally:
        reader.close()


class Program:
    """One of the project's programs in a subprocess, configured only through its environment,
    its output in `log_path`."""

    name = "program"

    def __init__(self, command: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            # Not the repository: a `.env` there is the user's, for their own cluster.
            cwd=log_path.parent,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` and return the exit code; fails if the process does not exit in time."""
        if self._process.poll() is None:
            self._process.send_signal(sig)
        try:
            return self._process.wait(SHUTDOWN_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise AssertionError(
                f"{self.name} ignored {sig.name} for {SHUTDOWN_WAIT_SECONDS}s\n{self.log()}"
            ) from None
        finally:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def running(self) -> bool:
        return self._process.poll() is None

    def wait_for_exit(self, timeout: float = SUMMARY_WAIT_SECONDS) -> int:
        """The exit code of a program expected to stop by itself."""
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} still running after {timeout}s\n{self.log()}"
            ) from None


class Processor(Program):
    """`python app.py`."""

    name = "processor"

    def __init__(self, topics: Topics, state_dir: Path, log_path: Path, **settings: str) -> None:
        self.health_port = free_port()
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": topics.bootstrap,
            "INPUT_TOPIC": topics.input,
            "OUTPUT_TOPIC": topics.output,
            "DLQ_TOPIC": topics.dlq,
            "CLOCK_TOPIC": f"{topics.consumer_group}-clock",
            "CONSUMER_GROUP": topics.consumer_group,
            "STATE_DIR": str(state_dir),
            "AUTO_OFFSET_RESET": "earliest",
            "HEALTH_PORT": str(self.health_port),
            "HEALTH_HOST": "127.0.0.1",
            **{name.upper(): value for name, value in settings.items()},
        }
        self.state_dir = state_dir
        super().__init__([sys.executable, str(REPO / "app.py")], env, log_path)

    def wait_until_ready(self, timeout: float = SUMMARY_WAIT_SECONDS) -> None:
        """Poll the readiness endpoint as an orchestrator would, until it answers 200."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            assert self._process.poll() is None, f"processor exited\n{self.log()}"
            try:
                url = f"http://127.0.0.1:{self.health_port}/ready"
                with urllib.request.urlopen(url, timeout=POLL_SECONDS) as response:
                    if response.status == HTTPStatus.OK:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                last = str(error)
            time.sleep(POLL_SECONDS)  # the probe's own period, as in compose
        raise AssertionError(f"processor not ready after {timeout}s ({last})\n{self.log()}")


@contextmanager
def running_processor(
    topics: Topics, state_dir: Path, log_path: Path, **settings: str
) -> Iterator[Processor]:
    processor = Processor(topics, state_dir, log_path, **settings)
    try:
        yield processor
    finally:
        processor.stop(signal.SIGKILL)


# A line of the processor's text log: time, level, logger, message (`logs.TEXT_FORMAT`).
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) \[([^\]]+)\] (.*)$")
LOG_TIME_FORMAT = "%Y-%m-%d %H:%M:%S,%f"
# Log times are taken when a line is made, the spacing when it is let through.
LOG_SPACING_LEEWAY_SECONDS = 0.5


def connection_loss_lines(output: str) -> list[tuple[datetime, str, str]]:
    """The lines of a processor's log in which a Kafka client reports a lost broker
    connection, at warning level or above: (time, level, line)."""
    found = []
    for line in output.splitlines():
        match = LOG_LINE.match(line)
        if match is None:
            continue
        at, level, name, message = match.groups()
        record = logging.makeLogRecord({"name": name, "msg": message})
        if level in ("WARNING", "ERROR", "CRITICAL") and is_connection_loss(record):
            found.append((datetime.strptime(at, LOG_TIME_FORMAT), level, line))
    return found


def assert_connection_losses_spaced(output: str) -> None:
    """Lost broker connections were reported as warnings, one line per period at most."""
    losses = connection_loss_lines(output)
    assert all(level == "WARNING" for _, level, _ in losses), output
    for (before, _, _), (after, _, line) in itertools.pairwise(losses):
        gap = (after - before).total_seconds()
        assert gap >= CONNECTION_LOSS_LINE_SECONDS - LOG_SPACING_LEEWAY_SECONDS, line
