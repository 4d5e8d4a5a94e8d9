"""The Quix floor: the least Quix Streams application with the pipeline's window.

It reads the input topic, parses every message with `orjson.loads` in one `apply`, gives every
record one key in place, and counts device types in a `tumbling_window(10 s).reduce` closed by
partition, under exactly-once, as the pipeline does; nothing else (no clock, no late check, no
dead letters, no second stage, nothing published). What it costs per event is what any
pipeline built on Quix's per-record window costs at least, so it shows how much of the
pipeline's cost is the framework's and how much is the pipeline's own.

    python -m bench.quix_floor --connection FILE --topic T --out FILE --timing FILE \\
        --window-seconds 10 --grace-seconds 2 --state-dir DIR
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Final

import orjson
from confluent_kafka import Consumer, TopicPartition
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.state.rocksdb import RocksDBOptions

from bench import reference
from login_stream.aggregation import MILLIS_PER_SECOND
from login_stream.application import CONSUMER_POLL_SECONDS, ROCKSDB_BLOCK_CACHE_BYTES
from login_stream.quix_internals import rekey_in_place

BROKER_TIMEOUT_SECONDS: Final = 30.0


def count(tallies: dict[str, int], event: dict[str, Any]) -> dict[str, int]:
    device_type = str(event.get("device_type"))
    tallies[device_type] = tallies.get(device_type, 0) + 1
    return tallies


def parse(raw: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return event if isinstance(event, dict) else {}


def ends(connection: dict[str, Any], topic: str) -> dict[int, int]:
    """The last offset of every non-empty partition of `topic`."""
    consumer = Consumer({**connection, "group.id": "bench-quix-floor"})
    try:
        metadata = consumer.list_topics(topic, timeout=BROKER_TIMEOUT_SECONDS).topics[topic]
        highs = {
            p: consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=BROKER_TIMEOUT_SECONDS
            )[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()
    return {p: high - 1 for p, high in highs.items() if high > 0}


def main(argv: list[str] | None = None) -> int:
    parser = reference.arguments(
        "The least Quix app with the pipeline's window.", "messages read, as JSON"
    )
    parser.add_argument("--grace-seconds", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    connection = reference.connection(args)
    remaining = ends(connection, args.topic)
    read = 0
    first_at: float | None = None

    def processed(topic: str, partition: int, offset: int) -> None:
        nonlocal read, first_at
        if topic != args.topic:
            return
        read += 1
        first_at = first_at or time.time()
        if remaining.get(partition) == offset:
            del remaining[partition]
            if not remaining:
                app.stop()

    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(connection),
        consumer_group=f"bench-quix-floor-{os.urandom(6).hex()}",
        auto_offset_reset="earliest",
        state_dir=str(args.state_dir),
        processing_guarantee="exactly-once",
        consumer_poll_timeout=CONSUMER_POLL_SECONDS,
        rocksdb_options=RocksDBOptions(block_cache_size=ROCKSDB_BLOCK_CACHE_BYTES),
        loglevel="WARNING",
        on_message_processed=processed,
    )
    topic = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    sdf = rekey_in_place(app.dataframe(topic).apply(parse), "global", "all")
    sdf.tumbling_window(
        duration_ms=args.window_seconds * MILLIS_PER_SECOND,
        grace_ms=args.grace_seconds * MILLIS_PER_SECOND,
    ).reduce(reducer=count, initializer=lambda event: count({}, event)).final(
        closing_strategy="partition"
    )
    app.run()
    reference.finish(args, orjson.dumps({"read": read}), first_at)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
