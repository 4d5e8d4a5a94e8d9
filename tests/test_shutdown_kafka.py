"""A consumer's close and an assignment it has not handed out yet (real broker).

librdkafka's close serves what is still queued, also an assignment that arrived after the last
poll; the processor's close refuses such an assignment unread
(`quix_internals.refuse_assignments_at_close`) and counts the stop as clean.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient
from quixstreams.exceptions import PartitionAssignmentError
from quixstreams.kafka import Consumer

from login_stream.application import build_application
from login_stream.quix_internals import refused_at_close
from login_stream.settings import load_settings
from login_stream.shutdown import StopDeadline
from tests.support import POLL_SECONDS, Topics

GROUP_STABLE_SECONDS = 30.0
REQUEST_SECONDS = 10.0
# Far beyond the test: the deadline must never end the test process.
NEVER_SECONDS = 3600.0
# Quix waits up to 30 s for the committed offsets inside an assignment's handler.
QUIX_OFFSETS_WAIT_SECONDS = 30.0


def wait_until_assigned_by_the_broker(bootstrap: str, group: str) -> None:
    """Until the group's coordinator has given its member partitions, which the member's
    client then holds for the next poll (or close) to hand out."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + GROUP_STABLE_SECONDS
    while True:
        description = admin.describe_consumer_groups([group])[group].result(REQUEST_SECONDS)
        assigned = any(member.assignment.topic_partitions for member in description.members)
        if description.state == ConsumerGroupState.STABLE and assigned:
            return
        assert time.monotonic() < deadline, f"group {group} not assigned: {description.state}"
        time.sleep(POLL_SECONDS)


def test_a_close_hands_out_an_assignment_that_arrived_after_the_last_poll(
    topics: Topics,
) -> None:
    consumer = Consumer(
        broker_address=topics.bootstrap,
        consumer_group=topics.consumer_group,
        auto_offset_reset="earliest",
    )
    handed_out: list[str] = []
    closing = False

    def on_assign(_client: object, partitions: list[TopicPartition]) -> None:
        handed_out.extend(f"{'close' if closing else 'poll'}:{tp.topic}" for tp in partitions)

    consumer.subscribe([topics.input], on_assign=on_assign)
    consumer.poll(0)  # joins the group; the assignment comes later
    wait_until_assigned_by_the_broker(topics.bootstrap, topics.consumer_group)
    closing = True
    consumer.close()  # type: ignore[no-untyped-call]
    assert handed_out == [f"close:{topics.input}"]


def test_the_processors_close_refuses_such_an_assignment_unread_and_at_once(
    topics: Topics, tmp_path: Path
) -> None:
    settings = load_settings(
        kafka_bootstrap_servers=topics.bootstrap,
        input_topic=topics.input,
        consumer_group=topics.consumer_group,
        state_dir=tmp_path,
    )
    app = build_application(settings, StopDeadline(NEVER_SECONDS, NEVER_SECONDS, str))
    # What `Application.run` does: subscribe with its handler, poll, and leave the consumer's
    # context on the way out.
    app._consumer.subscribe([app.topic(topics.input)], on_assign=app._on_assign)
    app._consumer.poll(0)
    wait_until_assigned_by_the_broker(topics.bootstrap, topics.consumer_group)
    started = time.monotonic()
    with pytest.raises(PartitionAssignmentError) as raised:
        app._consumer.__exit__(None, None, None)  # type: ignore[no-untyped-call]
    assert time.monotonic() - started < QUIX_OFFSETS_WAIT_SECONDS / 2
    assert refused_at_close(raised.value)
