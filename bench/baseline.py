"""The baseline: the least work that publishes the same summaries as the pipeline.

A bare confluent-kafka consumer reads every partition of the input topic from the beginning
to its high watermark in batches of 1000, validates every message with the pipeline's own
`parse_login`, places it in tumbling event-time windows closed by the same rule as Quix
Streams, counts with the pipeline's own `aggregation` functions, and writes the summaries as
JSON lines. No framework, no state store, no transactions, no dead-letter topic: the floor the
pipeline is compared against. The harness runs it as a subprocess to measure it like the
pipeline.

Like the pipeline's first stage, it keeps the windows of each partition apart, with that
partition's own latest time deciding what is late. On one partition the closed intervals are
the summaries; on several, every closed interval is a partial, merged by the pipeline's own
`merge_partial` as its second stage does, once the input is read (see `Merged`).

    python -m bench.baseline --connection FILE --topic T --out FILE \\
        --window-seconds 10 --grace-seconds 2 --max-message-bytes 65536

It imports only `login_stream.events`, `login_stream.aggregation` and `login_stream.merge` (not
the settings, which would pull in pydantic): the harness passes the shipped settings on the
command line.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Final, Protocol

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bench import reference
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
from login_stream.events import Record, parse_login, placed_late
from login_stream.merge import InMemoryPending, Partial, empty_merge_state, merge_partial

BATCH: Final = 1000
POLL_SECONDS: Final = 1.0
BROKER_TIMEOUT_SECONDS: Final = 30.0


class Summaries(Protocol):
    """Where the windows of every partition send the intervals they close, in order."""

    summaries: list[dict[str, Any]]

    def closed(self, partition: int, start_ms: int, end_ms: int, counts: Counts) -> None: ...

    def finish(self) -> None: ...


class Windows:
    """One partition's tumbling event-time windows, opened and closed as in the pipeline.

    The watermark is the latest time seen in this partition. An interval closes once the
    watermark passes its end by the grace period (`is_closed`, Quix Streams' rule). A record
    whose interval has closed is late: `placed_late` moves it into the open interval of the
    watermark, where a login counts as late and anything else as itself, as the pipeline's
    late check does.
    """

    def __init__(
        self, partition: int, duration_ms: int, grace_ms: int, summaries: Summaries
    ) -> None:
        self.partition = partition
        self.duration_ms = duration_ms
        self.grace_ms = grace_ms
        self._summaries = summaries
        self._open: dict[int, Counts] = {}
        self._watermark_ms = 0

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
        self._summaries.closed(self.partition, start, start + self.duration_ms, counts)


class OnePartition:
    """One partition: each closed interval is published at once, with the running totals."""

    def __init__(self) -> None:
        self.summaries: list[dict[str, Any]] = []
        self._totals = empty_counts()
        self._last_end_ms: int | None = None

    def closed(self, _partition: int, start_ms: int, end_ms: int, counts: Counts) -> None:
        summaries, self._totals = closing_summaries(
            self._totals, self._last_end_ms, start_ms, end_ms, counts
        )
        self.summaries.extend(summaries)
        self._last_end_ms = end_ms

    def finish(self) -> None:
        pass


class Merged:
    """Several partitions: each closed interval is a partial, merged as the pipeline does.

    The partials are merged after the input is read, in the order of their intervals; the
    result does not depend on the order (each partition's partials stay in theirs).
    """

    def __init__(self, partitions: int, duration_ms: int) -> None:
        self.summaries: list[dict[str, Any]] = []
        self._partitions = partitions
        self._duration_ms = duration_ms
        self._partials: list[Partial] = []

    def closed(self, partition: int, start_ms: int, end_ms: int, counts: Counts) -> None:
        self._partials.append(
            {
                "partition": partition,
                "partitions": self._partitions,
                "start_ms": start_ms,
                "end_ms": end_ms,
                "counts": counts,
            }
        )

    def finish(self) -> None:
        """End of input: merge. The merge holds back the intervals a partition has not
        reported; in the pipeline its clock closes an empty interval in every partition once
        the data is read, which completes them. An empty partial of the last interval from
        every partition that has not reached it does the same."""
        if not self._partials:
            return
        last_end_ms = max(partial["end_ms"] for partial in self._partials)
        reached = {p["partition"] for p in self._partials if p["end_ms"] == last_end_ms}
        for partition in set(range(self._partitions)) - reached:
            self.closed(partition, last_end_ms - self._duration_ms, last_end_ms, empty_counts())
        self._partials.sort(key=lambda partial: (partial["end_ms"], partial["partition"]))
        state, pending = empty_merge_state(), InMemoryPending()
        for partial in self._partials:
            self.summaries.extend(merge_partial(state, pending, partial))


def drain(
    connection: dict[str, Any], topic: str, duration_ms: int, grace_ms: int, max_bytes: int
) -> tuple[float | None, list[dict[str, Any]]]:
    """Read every partition of `topic` from the beginning to its high watermark; returns when
    the first message was read (epoch s, None for an empty topic) and the summaries."""
    consumer = Consumer(
        {
            **connection,
            "group.id": f"bench-baseline-{os.urandom(6).hex()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=BROKER_TIMEOUT_SECONDS).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        partitions = range(len(metadata.partitions))
        summaries: Summaries = (
            OnePartition() if len(partitions) == 1 else Merged(len(partitions), duration_ms)
        )
        windows = [Windows(p, duration_ms, grace_ms, summaries) for p in partitions]
        highs = [
            consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=BROKER_TIMEOUT_SECONDS
            )[1]
            for p in partitions
        ]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        first_at = None
        next_offsets = [0 for _ in partitions]
        while any(read < high for read, high in zip(next_offsets, highs, strict=True)):
            batch = consumer.consume(num_messages=BATCH, timeout=POLL_SECONDS)
            if batch and first_at is None:
                first_at = time.time()
            for message in batch:
                error = message.error()
                if error is not None:
                    raise KafkaException(error)
                partition = message.partition()
                record = parse_login(message.value(), max_bytes, message.key())
                window = windows[partition]
                window.add(record, placement_time(record, message.timestamp()[1], grace_ms))
                next_offsets[partition] = message.offset() + 1
    finally:
        consumer.close()
    for window in windows:
        window.finish()
    summaries.finish()
    return first_at, summaries.summaries


def main(argv: list[str] | None = None) -> int:
    parser = reference.arguments(
        "The benchmark's bare-consumer baseline.", "summaries, as JSON lines"
    )
    parser.add_argument("--grace-seconds", type=int, required=True)
    parser.add_argument("--max-message-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    if args.window_seconds <= 0 or args.grace_seconds < 0 or args.max_message_bytes <= 0:
        parser.error("--window-seconds and --max-message-bytes must be > 0, --grace-seconds >= 0")
    try:
        first_at, summaries = drain(
            reference.connection(args),
            args.topic,
            args.window_seconds * MILLIS_PER_SECOND,
            args.grace_seconds * MILLIS_PER_SECOND,
            args.max_message_bytes,
        )
    except KafkaException as exc:
        print(f"baseline: Kafka error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    reference.finish(args, b"".join(orjson.dumps(s) + b"\n" for s in summaries), first_at)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
