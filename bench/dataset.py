"""The benchmark's input: N upstream-shaped login messages pre-loaded into one fresh topic.

Events come from the project's own generator (`make_event`, seeded, `device_type` missing as
often as the generator leaves it out), with about 2% garbage in between. Event times are in the
past and advance evenly over `WINDOWS` windows, so every window closes while the backlog is
read; a message's Kafka timestamp is the time of the sequence (garbage takes its neighbour's).
A few events break the order the way real ones do, so that the check against the baseline
(computed here, while the data is written: `baseline`) covers the pipeline's time handling
too: some were delayed past their interval's grace (late), some by
less (out of order, still counted in their interval), and some come from a clock far ahead
(placed by their Kafka time). The topic is loaded once per run; every round of both
contestants reads the same data.

With P partitions, message i goes to partition i mod P: an even spread, the same in every run
and independent of the client's partitioner (upstream's random keys spread as evenly on
average). Each partition then holds every P-th message, so all of them advance in time alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, Message, Producer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from login_stream.aggregation import MILLIS_PER_SECOND
from login_stream.generator import ensure_topic, make_event, random_uuid

from . import shipped
from .baseline import Baseline
from .broker import Connection, stored_messages

SEED: Final = 20_241_031
WINDOWS: Final = 1000
GARBAGE_PROBABILITY: Final = 0.02
GARBAGE: Final = (b"not json", b"\xff\xfe", b"[1,2]")
# Shares of events whose own timestamp is off the sequence's time, and by how much (seconds).
LATE_PROBABILITY: Final = 0.002
LATE_BY_SECONDS: Final = 60
OUT_OF_ORDER_PROBABILITY: Final = 0.002
OUT_OF_ORDER_BY_SECONDS: Final = 1
CLOCK_AHEAD_PROBABILITY: Final = 0.001
CLOCK_AHEAD_BY_SECONDS: Final = 10**9
PROGRESS_EVERY: Final = 10_000
FLUSH_TIMEOUT_SECONDS: Final = 120.0
# Throughput over latency: large batches, a short linger, idempotence so that a retry can
# neither duplicate nor reorder a message (the counts must add up to exactly N).
PRODUCER_CONFIG: Final = {
    "linger.ms": 50,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "enable.idempotence": True,
    # Errors only: right after a broker start, the idempotence handshake warns and retries.
    "log_level": 3,
}


class DatasetError(Exception):
    """The input could not be loaded completely; the message is for the user."""


@dataclass(frozen=True)
class Dataset:
    topic: str
    partitions: int
    events: int
    last_ms: int  # event time of the last message: its interval is the last one with data
    # What the pipeline must publish for this data, up to the last interval with data.
    expected: list[dict[str, Any]]

    @property
    def last_interval_start_s(self) -> int:
        window_ms = shipped.WINDOW_SECONDS * MILLIS_PER_SECOND
        return (self.last_ms - self.last_ms % window_ms) // MILLIS_PER_SECOND


def preload(
    connection: Connection, topic: str, events: int, partitions: int, console: Console
) -> Dataset:
    ensure_topic(connection, topic, partitions=partitions)
    window_s = shipped.WINDOW_SECONDS
    span_s = WINDOWS * window_s
    now_s = int(time.time())
    # Aligned to a window, and one window clear of now, so all data is in closed intervals.
    first_s = now_s - now_s % window_s - span_s - window_s
    rng = random.Random(SEED)
    baseline = Baseline(
        window_s * MILLIS_PER_SECOND,
        shipped.GRACE_SECONDS * MILLIS_PER_SECOND,
        shipped.MAX_MESSAGE_BYTES,
    )
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({**connection, **PRODUCER_CONFIG})
    columns = (
        TextColumn("pre-loading {task.fields[topic]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    event_s = first_s
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("preload", total=events, topic=topic)
        for index in range(events):
            event_s = first_s + index * span_s // events
            if rng.random() < GARBAGE_PROBABILITY:
                value = rng.choice(GARBAGE)
            else:
                stamp_s = event_s + _clock_offset(rng)
                value = orjson.dumps(make_event(rng, stamp_s, shipped.MISSING_PROBABILITY))
            partition = index % partitions
            timestamp_ms = event_s * MILLIS_PER_SECOND
            _produce(producer, topic, partition, random_uuid(rng), value, timestamp_ms, delivered)
            baseline.add(partition, value, timestamp_ms)
            if (index + 1) % PROGRESS_EVERY == 0:
                progress.update(task, completed=index + 1)
        remaining = producer.flush(FLUSH_TIMEOUT_SECONDS)
        progress.update(task, completed=events)
    if remaining or failures:
        raise DatasetError(
            f"{remaining} messages undelivered, {len(failures)} failed"
            + (f" (first: {failures[0]})" if failures else "")
        )
    stored = stored_messages(connection, topic, partitions)
    if stored != events:
        raise DatasetError(f"{topic} holds {stored} messages, not {events}")
    return Dataset(
        topic=topic,
        partitions=partitions,
        events=events,
        last_ms=event_s * MILLIS_PER_SECOND,
        expected=baseline.summaries(),
    )


def _clock_offset(rng: random.Random) -> int:
    """How far an event's own timestamp is off the time it is written at."""
    draw = rng.random()
    if draw < LATE_PROBABILITY:
        return -LATE_BY_SECONDS
    draw -= LATE_PROBABILITY
    if draw < OUT_OF_ORDER_PROBABILITY:
        return -OUT_OF_ORDER_BY_SECONDS
    draw -= OUT_OF_ORDER_PROBABILITY
    if draw < CLOCK_AHEAD_PROBABILITY:
        return CLOCK_AHEAD_BY_SECONDS
    return 0


def _produce(
    producer: Producer,
    topic: str,
    partition: int,
    key: str,
    value: bytes,
    timestamp_ms: int,
    on_delivery: Callable[[KafkaError | None, Message], None],
) -> None:
    while True:
        try:
            producer.produce(
                topic,
                value,
                key,
                partition=partition,
                timestamp=timestamp_ms,
                on_delivery=on_delivery,
            )
        except BufferError:
            # The local queue is full: let librdkafka send some, then retry this message.
            producer.poll(0.05)
            continue
        producer.poll(0)
        return
