"""Reads of a topic that a broker of the cluster does not know yet (no Kafka)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from quixstreams.models.topics import TopicConfig
from quixstreams.models.topics.exceptions import TopicNotFoundError

from login_stream.application import build_application
from login_stream.settings import load_settings
from login_stream.shutdown import StopDeadline
from login_stream.topics import asking_again_while_unknown

NEVER_SECONDS = 3600.0
WAIT_SECONDS = 30.0
PARTITIONS = 3


def unknown() -> KafkaException:
    return KafkaException(
        KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition")
    )


def answers(*errors: KafkaException) -> Iterator[KafkaException | None]:
    yield from errors
    while True:
        yield None


def test_a_read_is_asked_again_until_the_broker_knows_the_topic() -> None:
    replies = answers(unknown(), unknown())
    calls = []

    def read() -> str:
        calls.append(1)
        error = next(replies)
        if error is not None:
            raise error
        return "the topic"

    assert asking_again_while_unknown(read, WAIT_SECONDS) == "the topic"
    assert len(calls) == 3


def test_any_other_error_is_raised_at_once() -> None:
    calls = []
    denied = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied"))

    def read() -> str:
        calls.append(1)
        raise denied

    with pytest.raises(KafkaException) as raised:
        asking_again_while_unknown(read, WAIT_SECONDS)
    assert raised.value is denied and len(calls) == 1


def test_a_topic_still_unknown_when_the_time_is_up_is_raised() -> None:
    def read() -> str:
        raise unknown()

    with pytest.raises(KafkaException) as raised:
        asking_again_while_unknown(read, 0.0)
    assert raised.value.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_a_topic_the_pipeline_just_made_is_asked_for_again_until_the_broker_lists_it() -> None:
    replies = iter([TopicNotFoundError("not listed"), TopicNotFoundError("not listed"), None])

    def read() -> str:
        error = next(replies)
        if error is not None:
            raise error
        return "the topic"

    assert asking_again_while_unknown(read, WAIT_SECONDS, just_made=True) == "the topic"


def test_a_topic_not_made_by_the_pipeline_and_not_listed_is_raised_at_once() -> None:
    calls = []

    def read() -> str:
        calls.append(1)
        raise TopicNotFoundError("not listed")

    with pytest.raises(TopicNotFoundError):
        asking_again_while_unknown(read, WAIT_SECONDS)
    assert len(calls) == 1


def test_the_pipelines_set_up_asks_again_for_a_topic_a_broker_does_not_know_yet(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    app = build_application(
        load_settings(state_dir=tmp_path), StopDeadline(NEVER_SECONDS, NEVER_SECONDS, str)
    )
    # Quix's read of a topic's configuration, answered as by a broker that learns of the
    # topic only at the third request.
    replies = answers(unknown(), unknown())

    def inspect_topics(names: list[str], timeout: float) -> dict[str, TopicConfig]:
        error = next(replies)
        if error is not None:
            raise error
        return {
            name: TopicConfig(num_partitions=PARTITIONS, replication_factor=1) for name in names
        }

    monkeypatch.setattr(app._topic_manager._admin, "inspect_topics", inspect_topics)
    assert app.topic("user-login").broker_config.num_partitions == PARTITIONS
