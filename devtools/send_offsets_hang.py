"""A minimal reproduction, for librdkafka's maintainers, of `send_offsets_to_transaction`
waiting far past its timeout when the consumer group's coordinator broker dies.

Only confluent-kafka and a real three-broker Kafka cluster (`LocalCluster`, from the same
Maven Central jars as the tests); none of the project's code. The steps:

1. three brokers, topics with three replicas and `min.insync.replicas=2`;
2. a consumer in a group reads a few messages; a transactional producer, whose transaction
   coordinator is another broker than the group's coordinator, commits one transaction with
   the consumer's offsets (so it knows the group's coordinator), then begins a second and
   produces one message;
3. the group coordinator is SIGKILLed (two of three brokers stay up: every write can still be
   acknowledged, and Kafka moves the group to a live broker within seconds), and the script
   waits until the broker has left the producer's metadata;
4. `send_offsets_to_transaction(..., timeout=TIMEOUT_SECONDS)` is called from a thread, and
   the main thread measures how long it takes to return.

It prints the client's versions, how long the call took and what it returned, and exits 0 if
the call returned within its timeout (and some slack), 1 if it was still waiting at
`--give-up` seconds (the bug). `--debug eos,broker,cgrp` adds librdkafka's own log on stderr.

    python -m devtools.send_offsets_hang [--attempts 3] [--give-up 120]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from devtools.local_broker import LocalCluster, free_port

BROKERS: Final = 3
TIMEOUT_SECONDS: Final = 10.0
# The call may overrun its timeout by a little (a request already on the wire).
SLACK_SECONDS: Final = 5.0
INPUT: Final = "repro-input"
OUTPUT: Final = "repro-output"
MESSAGES: Final = 100
TRANSACTION_STATE: Final = "__transaction_state"


def java_string_hash(text: str) -> int:
    """Java's `String.hashCode`, with which Kafka places a transactional id."""
    value = 0
    for unit in text.encode("utf-16-be").hex(" ", 2).split():
        value = (31 * value + int(unit, 16)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def transaction_coordinator(admin: AdminClient, transactional_id: str) -> int:
    """The broker id leading `transactional_id`'s partition of `__transaction_state`."""
    partitions = admin.list_topics(timeout=10).topics[TRANSACTION_STATE].partitions
    hashed = java_string_hash(transactional_id)
    index = 0 if hashed == -(1 << 31) else abs(hashed) % len(partitions)
    leader: int = partitions[index].leader
    return leader


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"repro: {what} did not happen within {timeout:.0f} s")
        time.sleep(0.2)


def attempt(
    cluster: LocalCluster, number: int, give_up: float, debug: str, config: dict[str, str]
) -> bool:
    """One try; True if the call overran its timeout until `give_up`."""
    bootstrap = cluster.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    group = f"repro-group-{number}"
    extra = {"debug": debug} if debug else {}

    feeder = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(MESSAGES):
        feeder.produce(INPUT, value=str(i).encode())
    assert feeder.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            **extra,
        }
    )
    consumer.subscribe([INPUT])
    read = 0
    deadline = time.monotonic() + 60
    while read < MESSAGES // 2 and time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            read += 1
    if read == 0:
        raise SystemExit("repro: the consumer read nothing within 60 s")

    # A throwaway transactional producer makes Kafka create __transaction_state.
    warmup = Producer({"bootstrap.servers": bootstrap, "transactional.id": "repro-warmup"})
    warmup.init_transactions(30)
    group_coordinator = admin.describe_consumer_groups([group])[group].result().coordinator
    transactional_id = next(
        candidate
        for candidate in (f"repro-txn-{number}-{i}" for i in range(1000))
        if transaction_coordinator(admin, candidate) != group_coordinator.id
    )
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "transactional.id": transactional_id,
            **extra,
            **config,
        }
    )
    producer.init_transactions(30)
    # A first transaction with offsets, as every checkpoint of a processor sends them: the
    # producer caches the group's coordinator.
    producer.begin_transaction()
    producer.produce(OUTPUT, value=b"first")
    producer.send_offsets_to_transaction(
        consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30
    )
    producer.commit_transaction(30)
    producer.begin_transaction()
    producer.produce(OUTPUT, value=b"second")
    producer.flush(30)

    victim = next(b for b in cluster.brokers if b.port == group_coordinator.port)
    print(
        f"attempt {number}: group coordinator is broker {group_coordinator.id} "
        f"(port {victim.port}); transaction coordinator of {transactional_id!r} is broker "
        f"{transaction_coordinator(admin, transactional_id)}; SIGKILL the group coordinator"
    )
    victim.kill()
    killed_at = time.monotonic()
    # Kafka fences a broker that stopped heart-beating and drops it from metadata; the
    # producer, told so by a metadata answer, decommissions its connection to it while the
    # broker stays cached as the group's coordinator (librdkafka #5511).
    wait_for(
        lambda: group_coordinator.id not in producer.list_topics(timeout=5).brokers,
        "the killed broker leaving the producer's metadata",
    )
    print(
        f"attempt {number}: broker {group_coordinator.id} left the producer's metadata "
        f"{time.monotonic() - killed_at:.1f} s after the kill"
    )

    positions = consumer.position(consumer.assignment())
    metadata = consumer.consumer_group_metadata()
    outcome: list[str] = []

    def send_offsets() -> None:
        try:
            producer.send_offsets_to_transaction(positions, metadata, TIMEOUT_SECONDS)
            outcome.append("returned without error")
        except KafkaException as error:
            outcome.append(f"raised {error.args[0]}")

    started = time.monotonic()
    caller = threading.Thread(target=send_offsets, daemon=True)
    caller.start()
    caller.join(give_up)
    took = time.monotonic() - started
    if caller.is_alive():
        print(
            f"attempt {number}: send_offsets_to_transaction(timeout={TIMEOUT_SECONDS:.0f} s) "
            f"still waiting after {took:.0f} s"
        )
        return True
    print(
        f"attempt {number}: send_offsets_to_transaction(timeout={TIMEOUT_SECONDS:.0f} s) "
        f"{outcome[0]} after {took:.1f} s"
    )
    overran = took > TIMEOUT_SECONDS + SLACK_SECONDS
    # Leave the cluster as it was for the next attempt.
    victim.start()
    consumer.close()
    return overran


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=3)
    parser.add_argument("--give-up", type=float, default=120.0, metavar="SECONDS")
    parser.add_argument("--debug", default="", help="librdkafka debug contexts")
    parser.add_argument(
        "--producer-config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a librdkafka setting of the transactional producer, to try a workaround",
    )
    args = parser.parse_args(argv)
    config = dict(item.split("=", 1) for item in args.producer_config)
    print(
        f"confluent-kafka {confluent_kafka.__version__}, "
        f"librdkafka {confluent_kafka.libversion()[0]}, Python {sys.version.split()[0]}"
    )
    ports: list[int] = []
    while len(ports) < BROKERS:
        if (port := free_port()) not in ports:
            ports.append(port)
    root = Path(tempfile.mkdtemp(prefix="send-offsets-hang-"))
    cluster = LocalCluster(ports, root=root)
    cluster.start()
    code = 0
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap_servers})
        futures = admin.create_topics(
            [NewTopic(INPUT, 3, BROKERS), NewTopic(OUTPUT, 3, BROKERS)], operation_timeout=30
        )
        for future in futures.values():
            future.result()
        wait_for(lambda: INPUT in admin.list_topics(timeout=10).topics, "topic creation")
        for number in range(1, args.attempts + 1):
            if attempt(cluster, number, args.give_up, args.debug, config):
                print("reproduced: the call did not honour its timeout")
                code = 1
                break
        else:
            print(f"not reproduced in {args.attempts} attempts")
    finally:
        cluster.stop()
    sys.stdout.flush()
    # A thread may still wait inside librdkafka, which would hold up a normal exit.
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
