"""The bare loop, the yardstick: the least a Python Kafka consumer can do with the input.
confluent-kafka `consume(1000)` over every partition to its end, `orjson.loads`, and device
types and missing fields counted in plain dicts per interval of the event's own timestamp. No
validation beyond what counting needs, no state, no output, nothing of the pipeline imported:
its cost is the client's and the parser's alone. `python -m bench.bare_loop JOB RESULT`
(JSON files; see `bench.contestants`).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

FIELDS: Final = ("user_id", "app_version", "device_type", "ip", "locale", "device_id", "timestamp")


def main(job_path: str, result_path: str) -> None:
    job = orjson.loads(Path(job_path).read_bytes())
    topic, ends, window_s = job["topic"], job["ends"], job["window_s"]
    config = {**job["connection"], "group.id": job["group"], "enable.auto.commit": False}
    consumer = Consumer(config)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(len(ends))])
    intervals: dict[int, dict[str, dict[Any, int]]] = {}
    read = unparsable = 0
    first_at = None
    while read < sum(ends):
        batch = consumer.consume(num_messages=1000, timeout=1.0)
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
    consumer.close()
    result = {"read": read, "unparsable": unparsable, "intervals": len(intervals)}
    Path(result_path).write_bytes(
        orjson.dumps({**result, "first_at": first_at, "done_at": time.time()})
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
