"""The baseline: the least work that publishes the same summaries as the pipeline.

A bare confluent-kafka consumer reads the input topic from the beginning to its high
watermark in batches of 1000, validates every message with the pipeline's own `parse_login`,
places it in tumbling event-time windows closed by the same rule as Quix Streams, counts with
the pipeline's own `aggregation` functions, and writes the summaries as JSON lines. No
framework, no state store, no transactions, no dead-letter topic: the floor the pipeline is
compared against. The harness runs it as a subprocess to measure it like the pipeline.

    python -m bench.baseline --bootstrap-servers ADDR --topic T --out FILE \\
        --window-seconds 10 --grace-seconds 2 --max-message-bytes 65536

It imports only `login_stream.events` and `login_stream.aggregation` (not the settings, which
would pull in pydantic): the harness passes the shipped settings on the command line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from login_stream.aggregation import (
    MILLIS_PER_SECOND,
    Counts,
    closing_summaries,
    count_record,
    empty_counts,
    is_closed,
    placement_time,
    start_interval,
)
from login_stream.events import Origin, Record, carried, parse_login, placed_late

BATCH: Final = 1000
POLL_SECONDS: Final = 1.0
BROKER_TIMEOUT_SECONDS: Final = 30.0


class Windows:
    """Tumbling event-time windows on one global key, opened and closed as in the pipeline.

    The watermark is the latest time seen. An interval closes once the watermark passes its
    end by the grace period (`is_closed`, Quix Streams' rule). A record whose interval has
    closed is late: `placed_late` moves it into the open interval of the watermark, where a
    login counts as late and anything else as itself, as the pipeline's late check does.
    """

    def __init__(self, duration_ms: int, grace_ms: int) -> None:
        self.duration_ms = duration_ms
        self.grace_ms = grace_ms
        self.summaries: list[dict[str, Any]] = []
        self._open: dict[int, Counts] = {}
        self._watermark_ms = 0
        self._totals = empty_counts()
        self._last_end_ms: int | None = None

    def add(self, record: Record, timestamp_ms: int) -> None:
        if self._is_closed(timestamp_ms):
            record = placed_late(record, self._watermark_ms)
            timestamp_ms = self._watermark_ms
        start = timestamp_ms - timestamp_ms % self.duration_ms
        counts = self._open.get(start)
        self._open[start] = (
            start_interval(record) if counts is None else count_record(counts, record)
        )
        # Only a new latest time can close an interval; most records do not move it.
        if timestamp_ms > self._watermark_ms:
            self._watermark_ms = timestamp_ms
            self._close()

    def finish(self) -> None:
        """End of input: close every open interval, in order."""
        for start in sorted(self._open):
            self._publish(start, self._open.pop(start))

    def _is_closed(self, timestamp_ms: int) -> bool:
        return is_closed(timestamp_ms, self._watermark_ms, self.duration_ms, self.grace_ms)

    def _close(self) -> None:
        # Few intervals are open at once: one, or two during the grace period.
        while self._open:
            first = min(self._open)
            if not self._is_closed(first):
                return
            self._publish(first, self._open.pop(first))

    def _publish(self, start: int, counts: Counts) -> None:
        end = start + self.duration_ms
        summaries, self._totals = closing_summaries(
            self._totals, self._last_end_ms, start, end, counts
        )
        self.summaries.extend(summaries)
        self._last_end_ms = end


def _origin(topic: str, partition: int, offset: int, key: bytes | None) -> Origin:
    """Where a message was read, built as the pipeline's `read_message` builds it."""
    return {"topic": topic, "partition": partition, "offset": offset, "key": carried(key)}


def drain(bootstrap: str, topic: str, windows: Windows, max_bytes: int) -> float | None:
    """Read `topic` (one partition) from the beginning to its high watermark; returns when
    the first message was read (epoch s), None for an empty topic."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-baseline-{os.urandom(6).hex()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=BROKER_TIMEOUT_SECONDS).topics[topic]
        if partitions.error is not None:
            raise KafkaException(partitions.error)
        if len(partitions.partitions) != 1:
            raise SystemExit(f"baseline: {topic} must have exactly one partition")
        partition = TopicPartition(topic, 0)
        _low, high = consumer.get_watermark_offsets(partition, timeout=BROKER_TIMEOUT_SECONDS)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        first_at = None
        next_offset = 0
        while next_offset < high:
            batch = consumer.consume(num_messages=BATCH, timeout=POLL_SECONDS)
            if batch and first_at is None:
                first_at = time.time()
            for message in batch:
                error = message.error()
                if error is not None:
                    raise KafkaException(error)
                offset = message.offset()
                origin = _origin(topic, 0, offset, message.key())
                record = parse_login(message.value(), max_bytes, origin)
                windows.add(
                    record, placement_time(record, message.timestamp()[1], windows.grace_ms)
                )
                next_offset = offset + 1
    finally:
        consumer.close()
    windows.finish()
    return first_at


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The benchmark's bare-consumer baseline.")
    parser.add_argument("--bootstrap-servers", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", type=Path, required=True, help="summaries, as JSON lines")
    parser.add_argument(
        "--timing", type=Path, required=True, help="first message and done times, as JSON"
    )
    parser.add_argument("--window-seconds", type=int, required=True)
    parser.add_argument("--grace-seconds", type=int, required=True)
    parser.add_argument("--max-message-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    if args.window_seconds <= 0 or args.grace_seconds < 0 or args.max_message_bytes <= 0:
        parser.error("--window-seconds and --max-message-bytes must be > 0, --grace-seconds >= 0")
    windows = Windows(
        args.window_seconds * MILLIS_PER_SECOND, args.grace_seconds * MILLIS_PER_SECOND
    )
    try:
        first_at = drain(args.bootstrap_servers, args.topic, windows, args.max_message_bytes)
    except KafkaException as exc:
        print(f"baseline: Kafka error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    args.out.write_bytes(b"".join(orjson.dumps(s) + b"\n" for s in windows.summaries))
    done_at = time.time()
    args.timing.write_bytes(orjson.dumps({"first_message_at": first_at, "done_at": done_at}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
