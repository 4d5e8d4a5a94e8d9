"""The input of a run: N login messages pre-loaded into a fresh topic, read by every contestant
in every round, and the baseline computed from them while they are written.

Events come from the project's generator (seeded), about 2% garbage between them, their times
in the past and advancing evenly over `WINDOWS` windows, so every window closes during the
drain. A few carry a timestamp off their Kafka time, so the check covers the time handling too.
Message i goes to partition i mod P: all partitions hold an even share and advance alike.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, Message, Producer

from bench import BenchError
from login_stream.aggregation import MILLIS_PER_SECOND
from login_stream.generator import ensure_topic, make_event, random_uuid
from login_stream.settings import Settings

from .baseline import Baseline


def shipped(name: str) -> Any:
    """A setting as shipped: the benchmark never keeps a copy of a window length or a grace."""
    return Settings.model_fields[name].default


WINDOW_SECONDS: Final = int(shipped("window_seconds"))
GRACE_SECONDS: Final = int(shipped("window_grace_seconds"))
MISSING_PROBABILITY: Final = float(shipped("generator_missing_probability"))
SEED: Final = 20_241_031
WINDOWS: Final = 1000
GARBAGE_PROBABILITY: Final = 0.02
GARBAGE: Final = (b"not json", b"\xff\xfe", b"[1,2]")
# (share of events, seconds their own timestamp is off their Kafka time): late, out of order
# within the grace, and from a clock decades ahead (placed by their Kafka time).
OFF_CLOCK: Final = ((0.002, -60), (0.002, -1), (0.001, 10**9))
FLUSH_TIMEOUT_SECONDS: Final = 120.0
# Throughput over latency; idempotence, so a retry can neither duplicate nor reorder a message;
# errors only, as the idempotence handshake warns and retries right after a broker start.
PRODUCER_CONFIG: Final = {
    "linger.ms": 50,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "enable.idempotence": True,
    "log_level": 3,
}


@dataclass(frozen=True)
class Dataset:
    topic: str
    events: int
    ends: list[int]  # messages in each partition, which is each one's end offset
    last_interval_start_s: int  # the last interval with data
    expected: list[dict[str, Any]]  # the baseline: what the pipeline must publish


def preload(connection: dict[str, Any], topic: str, events: int, partitions: int) -> Dataset:
    print(f"pre-loading {topic}: {events:,} messages", flush=True)
    ensure_topic(connection, topic, partitions=partitions)
    span_s = WINDOWS * WINDOW_SECONDS
    now_s = int(time.time())
    # Aligned to a window, and one window clear of now, so all data is in closed intervals.
    first_s = now_s - now_s % WINDOW_SECONDS - span_s - WINDOW_SECONDS
    rng = random.Random(SEED)
    baseline = Baseline(WINDOW_SECONDS, GRACE_SECONDS, shipped("max_message_bytes"))
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({**connection, **PRODUCER_CONFIG})
    event_s = first_s
    for index in range(events):
        event_s = first_s + index * span_s // events
        if rng.random() < GARBAGE_PROBABILITY:
            value = rng.choice(GARBAGE)
        else:
            stamp_s = event_s + _clock_offset(rng.random())
            value = orjson.dumps(make_event(rng, stamp_s, MISSING_PROBABILITY))
        key, partition, at_ms = random_uuid(rng), index % partitions, event_s * MILLIS_PER_SECOND
        while True:
            try:
                producer.produce(
                    topic, value, key, partition, on_delivery=delivered, timestamp=at_ms
                )
                break
            except BufferError:
                producer.poll(0.05)  # the local queue is full: let librdkafka send some
        producer.poll(0)
        baseline.add(partition, value, at_ms)
    remaining = producer.flush(FLUSH_TIMEOUT_SECONDS)
    if remaining or failures:
        first = f" (first: {failures[0]})" if failures else ""
        raise BenchError(f"{remaining} messages undelivered, {len(failures)} failed{first}")
    ends = [len(range(partition, events, partitions)) for partition in range(partitions)]
    return Dataset(topic, events, ends, event_s - event_s % WINDOW_SECONDS, baseline.summaries())


def _clock_offset(draw: float) -> int:
    """How far an event's own timestamp is off the time it is written at."""
    for share, offset_s in OFF_CLOCK:
        if draw < share:
            return offset_s
        draw -= share
    return 0
