"""The Quix floor: the least Quix Streams application with the pipeline's window. It parses
every message with `orjson.loads` in one `apply`, gives every record one key in place, and
counts device types in a `tumbling_window(10 s).reduce` closed by partition, exactly-once, with
the pipeline's poll timeout and RocksDB block cache; nothing else (no clock, no late check, no
dead letters, no second stage, no output). What the pipeline costs above it is its own.
`python -m bench.quix_floor JOB RESULT` (JSON files; see `bench.contestants`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import orjson
from quixstreams import Application
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.state.rocksdb import RocksDBOptions

from login_stream.aggregation import MILLIS_PER_SECOND
from login_stream.application import CONSUMER_POLL_SECONDS, ROCKSDB_BLOCK_CACHE_BYTES
from login_stream.quix_internals import rekey_in_place


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


def main(job_path: str, result_path: str) -> None:
    job = orjson.loads(Path(job_path).read_bytes())
    # The last offset of every partition that has one: the app stops once all are processed.
    remaining = {partition: end - 1 for partition, end in enumerate(job["ends"]) if end > 0}
    read = 0
    first_at: float | None = None

    def processed(_topic: str, partition: int, offset: int) -> None:  # called for the input only
        nonlocal read, first_at
        read += 1
        first_at = first_at or time.time()
        if remaining.get(partition) == offset:
            del remaining[partition]
            if not remaining:
                app.stop()

    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(job["connection"]),
        consumer_group=job["group"],
        auto_offset_reset="earliest",
        state_dir=job["state_dir"],
        processing_guarantee="exactly-once",
        consumer_poll_timeout=CONSUMER_POLL_SECONDS,
        rocksdb_options=RocksDBOptions(block_cache_size=ROCKSDB_BLOCK_CACHE_BYTES),
        loglevel="WARNING",
        on_message_processed=processed,
    )
    topic = app.topic(job["topic"], key_deserializer="bytes", value_deserializer="bytes")
    sdf = rekey_in_place(app.dataframe(topic).apply(parse), "global", "all")
    sdf.tumbling_window(
        duration_ms=job["window_s"] * MILLIS_PER_SECOND,
        grace_ms=job["grace_s"] * MILLIS_PER_SECOND,
    ).reduce(reducer=count, initializer=lambda event: count({}, event)).final(
        closing_strategy="partition"
    )
    app.run()
    result = {"read": read, "first_at": first_at, "done_at": time.time()}
    Path(result_path).write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
