"""The broker the benchmark runs against, and the topics it creates and removes there.

With `--bootstrap-servers` (or `KAFKA_BOOTSTRAP_SERVERS`) the benchmark uses that broker and
deletes what it created at the end. Otherwise it starts the project's local broker on its own
port (so a running demo or test broker is never disturbed) and stops it at the end, which also
removes its storage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from login_stream.local_broker import BrokerError, LocalBroker

LOCAL_PORT: Final = 39192
ADMIN_TIMEOUT_SECONDS: Final = 30.0
PROBE_TIMEOUT_SECONDS: Final = 10.0


@contextmanager
def broker(bootstrap_servers: str | None) -> Iterator[str]:
    """The bootstrap address of a broker that answers, for the duration of the block."""
    if bootstrap_servers:
        _probe(bootstrap_servers)
        yield bootstrap_servers
        return
    local = LocalBroker(port=LOCAL_PORT)
    try:
        local.start()
        yield local.bootstrap_servers
    finally:
        # Client handles still waiting for collection would log every lost connection.
        gc.collect()
        local.stop()


def _probe(bootstrap: str) -> None:
    """Fail early, with one line, when nothing answers at `bootstrap`."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        admin.list_topics(timeout=PROBE_TIMEOUT_SECONDS)
    except KafkaException:
        raise BrokerError(
            f"no Kafka broker answers at {bootstrap} within {PROBE_TIMEOUT_SECONDS:.0f}s"
        ) from None


def stored_messages(bootstrap: str, topic: str, partitions: int) -> int:
    """How many messages the partitions of `topic` hold."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermark"})
    try:
        stored = 0
        for partition in range(partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=ADMIN_TIMEOUT_SECONDS
            )
            stored += high - low
        return int(stored)
    finally:
        consumer.close()


def delete_run(bootstrap: str, marker: str, groups: list[str]) -> None:
    """Best effort: remove every topic whose name holds `marker` (inputs, outputs, the
    pipeline's clock, changelog and repartition topics) and the pipeline's consumer groups."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        topics = [
            name
            for name in admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).topics
            if marker in name
        ]
        for future in admin.delete_topics(topics).values() if topics else ():
            future.result(ADMIN_TIMEOUT_SECONDS)
        for future in admin.delete_consumer_groups(groups).values() if groups else ():
            future.result(ADMIN_TIMEOUT_SECONDS)
    except (KafkaException, TimeoutError):
        pass  # leftovers under unique names harm nothing
