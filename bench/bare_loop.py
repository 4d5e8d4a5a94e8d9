"""The bare loop: the yardstick every Kafka consumer in Python is measured against.

A confluent-kafka consumer reads every partition of the input topic from the beginning to its
high watermark with `consume(1000)`, parses each message with `orjson.loads`, and counts device
types and missing fields in plain dicts per 10-second interval of the event's own timestamp.
Nothing else: no validation beyond what counting needs, no late handling, no state, no output
topic. Its intervals are not the pipeline's summaries and are not compared with them; the
harness checks only that it read every message.

    python -m bench.bare_loop --connection FILE --topic T --out FILE --timing FILE \\
        --window-seconds 10

It imports nothing of the pipeline, so its cost is the client's and the parser's alone.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bench import reference

BATCH: Final = 1000
POLL_SECONDS: Final = 1.0
BROKER_TIMEOUT_SECONDS: Final = 30.0
FIELDS: Final = ("user_id", "app_version", "device_type", "ip", "locale", "device_id", "timestamp")


def drain(
    connection: dict[str, Any], topic: str, window_s: int
) -> tuple[float | None, dict[str, Any]]:
    """Read `topic` to its end; returns when the first message was read (epoch s) and the
    counts: messages read, unparsable ones, and per interval start the tallies."""
    consumer = Consumer(
        {
            **connection,
            "group.id": f"bench-bare-{os.urandom(6).hex()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    intervals: dict[int, dict[str, dict[str, int]]] = {}
    read = unparsable = 0
    first_at = None
    try:
        metadata = consumer.list_topics(topic, timeout=BROKER_TIMEOUT_SECONDS).topics[topic]
        if metadata.error is not None:
            raise KafkaException(metadata.error)
        partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
        remaining = sum(
            consumer.get_watermark_offsets(tp, timeout=BROKER_TIMEOUT_SECONDS)[1]
            for tp in partitions
        )
        consumer.assign(partitions)
        while read < remaining:
            batch = consumer.consume(num_messages=BATCH, timeout=POLL_SECONDS)
            if batch and first_at is None:
                first_at = time.time()
            for message in batch:
                if message.error() is not None:
                    raise KafkaException(message.error())
                read += 1
                try:
                    event = orjson.loads(message.value())
                    start = int(event["timestamp"]) // window_s * window_s
                except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
                    unparsable += 1
                    continue
                tallies = intervals.get(start)
                if tallies is None:
                    tallies = intervals[start] = {"device_types": {}, "missing": {}}
                device_types = tallies["device_types"]
                device_type = event.get("device_type")
                device_types[device_type] = device_types.get(device_type, 0) + 1
                missing = tallies["missing"]
                for field in FIELDS:
                    if field not in event:
                        missing[field] = missing.get(field, 0) + 1
    finally:
        consumer.close()
    return first_at, {"read": read, "unparsable": unparsable, "intervals": len(intervals)}


def main(argv: list[str] | None = None) -> int:
    parser = reference.arguments(
        "The benchmark's bare confluent-kafka loop.", "what was counted, as JSON"
    )
    args = parser.parse_args(argv)
    if args.window_seconds <= 0:
        parser.error("--window-seconds must be > 0")
    try:
        first_at, counts = drain(reference.connection(args), args.topic, args.window_seconds)
    except KafkaException as exc:
        print(f"bare loop: Kafka error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    reference.finish(args, orjson.dumps(counts), first_at)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
