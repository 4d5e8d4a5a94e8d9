"""The broker the benchmark runs against, and the topics it creates and removes there.

With `--bootstrap-servers` (or `KAFKA_BOOTSTRAP_SERVERS`) the benchmark uses that broker and
deletes what it created at the end. Every client of the benchmark, its own and the
contestants', then connects with the project's security settings from the environment
(`KAFKA_SECURITY_PROTOCOL`, `KAFKA_SASL_*`, `KAFKA_SSL_*`), read as the processor reads them.
Otherwise it starts the project's local broker on its own port (so a running demo or test
broker is never disturbed) and stops it at the end, which also removes its storage.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from devtools.local_broker import BrokerError, LocalBroker
from login_stream.connection import client_config
from login_stream.settings import load_settings

# librdkafka settings every client of a run starts from: the broker and, on a secured cluster,
# TLS and SASL. Secrets included: never printed.
Connection = dict[str, Any]

LOCAL_PORT: Final = 39192
ADMIN_TIMEOUT_SECONDS: Final = 30.0
PROBE_TIMEOUT_SECONDS: Final = 10.0


@contextmanager
def broker(bootstrap_servers: str | None) -> Iterator[Connection]:
    """How to connect to a broker that answers, for the duration of the block."""
    if bootstrap_servers:
        connection = secured(bootstrap_servers)
        _probe(connection)
        yield connection
        return
    local = LocalBroker(port=LOCAL_PORT)
    try:
        local.start()
        yield {"bootstrap.servers": local.bootstrap_servers}
    finally:
        # Client handles still waiting for collection would log every lost connection.
        gc.collect()
        local.stop()


def secured(bootstrap_servers: str) -> Connection:
    """The broker at `bootstrap_servers`, with the security settings of the environment."""
    config = client_config(load_settings(kafka_bootstrap_servers=bootstrap_servers))
    # The processor's log handler for librdkafka: the benchmark's own clients stay quiet.
    del config["logger"]
    return config


def described(connection: Connection) -> str:
    """The broker and how it is reached, without secrets: for the user."""
    protocol = connection.get("security.protocol", "PLAINTEXT").upper()
    return f"{connection['bootstrap.servers']} ({protocol})"


def _probe(connection: Connection) -> None:
    """Fail early, with one line, when nothing answers."""
    admin = AdminClient({**connection, "log_level": 0})
    try:
        admin.list_topics(timeout=PROBE_TIMEOUT_SECONDS)
    except KafkaException:
        raise BrokerError(
            f"no Kafka broker answers at {described(connection)} within "
            f"{PROBE_TIMEOUT_SECONDS:.0f}s; check KAFKA_BOOTSTRAP_SERVERS and the "
            "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* settings"
        ) from None


def stored_messages(connection: Connection, topic: str, partitions: int) -> int:
    """How many messages the partitions of `topic` hold."""
    consumer = Consumer({**connection, "group.id": "bench-watermark"})
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


def delete_run(connection: Connection, marker: str, groups: list[str]) -> None:
    """Best effort: remove every topic whose name holds `marker` (inputs, outputs, the
    pipeline's clock, changelog and repartition topics) and the pipeline's consumer groups."""
    admin = AdminClient(connection)
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
