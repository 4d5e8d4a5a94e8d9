"""Local state meets a Kafka cluster it does not belong to (real brokers, real processes).

A processor's state is a cache of its changelog on one cluster. Found beside another cluster
(a broker that came back empty at the same address), it must be refused before anything is
read or published, however the first run ended; rebuilt on request; and any problem Quix
finds with the state, even inside a partition assignment, must end the processor with a
non-zero exit code within seconds instead of leaving it hanging.
"""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from devtools.local_broker import LocalBroker, free_port
from login_stream.local_state import OWNER_FILE, current_owner
from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import (
    POLL_SECONDS,
    Processor,
    TopicReader,
    Topics,
    create_topic,
    create_topics,
    fresh_topics,
    produce,
    running_processor,
    summary_reader,
    topic_reader,
)

WINDOW_SECONDS = 2
SETTINGS = {"WINDOW_SECONDS": str(WINDOW_SECONDS), "WINDOW_GRACE_SECONDS": "1"}
# What "within seconds" means for a processor that has to give up.
EXIT_WITHIN_SECONDS = 30.0
EVENTS = 400
EVENTS_PER_SECOND = 400


def wait_for_path(path: Path, processor: Processor, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written\n{processor.log()}"
        time.sleep(POLL_SECONDS)


def stopped_right_after_start(processor: Processor, _topics: Topics, reader: TopicReader) -> None:
    wait_for_path(processor.state_dir / OWNER_FILE, processor)
    assert processor.stop(signal.SIGTERM) == 0, processor.log()


def stopped_after_intervals(processor: Processor, topics: Topics, reader: TopicReader) -> None:
    scenario = Scenario(rng=random.Random(3), first_window=0, window_seconds=WINDOW_SECONDS)
    producer = RealTimeProducer(topics.bootstrap, topics.input, scenario, EVENTS, EVENTS_PER_SECOND)
    producer.start()
    producer.join()
    reader.wait_for_interval(max(scenario.windows))
    assert processor.stop(signal.SIGTERM) == 0, processor.log()


def killed_in_a_transaction(processor: Processor, topics: Topics, reader: TopicReader) -> None:
    scenario = Scenario(rng=random.Random(4), first_window=0, window_seconds=WINDOW_SECONDS)
    producer = RealTimeProducer(
        topics.bootstrap, topics.input, scenario, 4 * EVENTS, EVENTS_PER_SECOND
    )
    producer.start()
    reader.wait_for(len(reader.messages) + 1)
    # Input keeps arriving, so the processor is inside an open transaction when it dies.
    processor.stop(signal.SIGKILL)
    producer.join()


@pytest.mark.parametrize(
    "first_run", [stopped_right_after_start, stopped_after_intervals, killed_in_a_transaction]
)
def test_state_of_another_cluster_is_refused_before_anything_is_published(
    first_run: Callable[[Processor, Topics, TopicReader], None], tmp_path: Path
) -> None:
    state, log = tmp_path / "state", tmp_path / "first.log"
    with LocalBroker(port=free_port(), root=tmp_path / "kafka") as broker:
        topics = Topics(
            broker.bootstrap_servers, "user-login", "user-login-processed", "user-login-dlq", "g"
        )
        create_topics(topics)
        with summary_reader(topics) as reader:
            processor = Processor(topics, state, log, **SETTINGS)
            try:
                first_run(processor, topics, reader)
            finally:
                processor.stop(signal.SIGKILL)

        # The same address, a new and empty cluster, which already has input waiting.
        broker.stop()
        broker.start()
        create_topics(topics)
        scenario = Scenario(rng=random.Random(5), first_window=0, window_seconds=WINDOW_SECONDS)
        new_events = 30
        for _ in range(new_events):
            scenario.add_message_at(time.time())
        produce(topics.bootstrap, topics.input, scenario.messages)

        with running_processor(topics, state, tmp_path / "second.log", **SETTINGS) as processor:
            assert processor.wait_for_exit(EXIT_WITHIN_SECONDS) == 1
            output = processor.log()
        with summary_reader(topics) as reader, topic_reader(topics.bootstrap, topics.dlq) as dlq:
            reader.read_to_end()
            dlq.read_to_end()
            assert reader.messages == [] and dlq.messages == []

        # Asked to, it drops the old state and counts this cluster's events alone.
        with (
            summary_reader(topics) as reader,
            running_processor(
                topics,
                state,
                tmp_path / "third.log",
                STATE_REBUILD_ON_CLUSTER_CHANGE="true",
                **SETTINGS,
            ) as processor,
        ):
            reader.wait_for_interval(max(scenario.windows))
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
            reader.read_to_end()

    refusal = [line for line in output.splitlines() if "ERROR" in line]
    assert len(refusal) == 1, output
    assert f"STATE_DIR={state}" in refusal[0] and "STATE_REBUILD_ON_CLUSTER_CHANGE" in refusal[0]
    assert "Traceback" not in output
    assert_series(reader.summaries, scenario.expected())


def test_state_ahead_of_its_changelog_ends_the_processor_within_seconds(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The same cluster, its changelog topics deleted and recreated with one record: Quix
    finds the local state ahead of them inside the partition assignment, where its own
    shutdown would hang. (A recreated changelog left empty would pass Quix's check.)"""
    topics = fresh_topics(kafka_bootstrap)
    state, log = tmp_path / "state", tmp_path / "processor.log"
    with (
        summary_reader(topics) as reader,
        running_processor(topics, state, log, **SETTINGS) as processor,
    ):
        produce(kafka_bootstrap, topics.input, [(b"{}", int(time.time() * 1000))])
        reader.wait_for(1)  # committed: state, changelog and offsets
        assert processor.stop(signal.SIGTERM) == 0, processor.log()

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    changelogs = {
        name: len(topic.partitions)
        for name, topic in admin.list_topics(timeout=10).topics.items()
        if name.startswith("changelog__") and topics.consumer_group in name
    }
    assert changelogs
    written = {name: partitions_with_records(kafka_bootstrap, name) for name in changelogs}
    for future in admin.delete_topics(list(changelogs)).values():
        future.result()
    for name, partitions in changelogs.items():
        # As many partitions as before, each that had records holding one now.
        create_topic(kafka_bootstrap, name, partitions)
        produce(
            kafka_bootstrap,
            name,
            [(b"not this state's history", int(time.time() * 1000))] * len(written[name]),
            partition_of=written[name].__getitem__,
        )

    with running_processor(topics, state, tmp_path / "second.log", **SETTINGS) as processor:
        assert processor.wait_for_exit(EXIT_WITHIN_SECONDS) == 1
        output = processor.log()
    assert "ahead of its changelog" in output
    assert "Traceback" not in output


def partitions_with_records(bootstrap: str, topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [
            p
            for p in partitions
            if consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] > 0
        ]
    finally:
        consumer.close()


def test_a_topic_the_cluster_does_not_show_yet_is_asked_for_again(kafka_bootstrap: str) -> None:
    """On a cluster, a broker may not know a clock topic made a moment ago on another one;
    the owner is read once it shows (here the topic appears a second after the first ask)."""
    topic = f"login-stream-clock-{uuid.uuid4().hex[:10]}"
    appears = threading.Timer(1.0, create_topic, args=(kafka_bootstrap, topic))
    appears.start()
    try:
        owner = current_owner({"bootstrap.servers": kafka_bootstrap}, "cluster", topic, 30.0)
    finally:
        appears.join()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    described = admin.describe_topics(TopicCollection([topic]))
    assert owner.clock_topic_id == str(described[topic].result().topic_id)
