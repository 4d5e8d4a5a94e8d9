"""The one line a user gets for each kind of failure, case by case (no Kafka)."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from pydantic import SecretStr
from quixstreams.kafka.exceptions import KafkaBrokerUnavailableError
from quixstreams.models.topics.exceptions import (
    CreateTopicFailure,
    TopicNotFoundError,
    TopicPermissionError,
)
from quixstreams.state.exceptions import InvalidStoreChangelogOffset, PartitionStoreIsUsed

from login_stream.broker_watch import BrokersLost
from login_stream.failures import RULES, describe_failure
from login_stream.quix_internals import TOPIC_CREATE_DENIED_TEXT
from login_stream.settings import Settings
from login_stream.topics import PartitionsChanged

SETTINGS = Settings(
    _env_file=None,  # type: ignore[call-arg]
    kafka_bootstrap_servers="kafka-1:9092",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="analytics",
    kafka_sasl_password=SecretStr("secret-pw"),
    consumer_group="logins",
    processor_instance_id="p-0",
    state_dir=Path("/var/lib/login-stream"),
    topic_replication_factor=3,
)


def kafka(code: int, text: str = "refused") -> KafkaException:
    return KafkaException(KafkaError(code, text))


def wrapped(cause: BaseException) -> Exception:
    """As Quix raises it from a partition assignment: inside another error."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise RuntimeError("Error in partition assignment") from inner
    except RuntimeError as outer:
        return outer


CASES = [
    (
        kafka(KafkaError.GROUP_AUTHORIZATION_FAILED),
        ["authorization denied", "KAFKA_SASL_USERNAME=analytics", "CONSUMER_GROUP=logins"],
    ),
    (
        kafka(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
        ["authorization denied", "transactional id logins-p-0", "exactly-once"],
    ),
    (kafka(KafkaError.CLUSTER_AUTHORIZATION_FAILED), ["access to the cluster"]),
    (TopicPermissionError("no describe"), ["authorization denied", "a topic (INPUT_TOPIC="]),
    (
        CreateTopicFailure(f"only topics that {TOPIC_CREATE_DENIED_TEXT}"),
        ["authorization denied", "a topic"],
    ),
    (
        InvalidStoreChangelogOffset("ahead"),
        ["STATE_DIR=/var/lib/login-stream is ahead of its changelog", "delete that directory"],
    ),
    (PartitionStoreIsUsed("busy"), ["cannot be used (PartitionStoreIsUsed: busy)"]),
    (
        BrokersLost(52.4),
        ["did not answer for 52 s", "CONSUMER_SESSION_TIMEOUT_SECONDS=45", "group logins"],
    ),
    (
        kafka(KafkaError._MSG_TIMED_OUT, "Message timed out"),
        ["KAFKA_BOOTSTRAP_SERVERS=kafka-1:9092 stopped answering (Message timed out)"],
    ),
    (KafkaBrokerUnavailableError("x"), ["stopped answering"]),
    (PartitionsChanged("INPUT_TOPIC=user-login has 4 partitions"), ["has 4 partitions"]),
    (TopicNotFoundError("no such topic"), ["no such topic", "TOPIC_REPLICATION_FACTOR=3"]),
    (kafka(KafkaError.UNKNOWN, "odd"), ["Kafka error: KafkaError{code=UNKNOWN"]),
    (ValueError("bad"), ["processing stopped: ValueError: bad"]),
]


@pytest.mark.parametrize(("error", "expected"), CASES, ids=lambda value: type(value).__name__)
def test_each_failure_gets_its_line_also_when_wrapped(
    error: BaseException, expected: list[str]
) -> None:
    for raised in (error, wrapped(error)):
        line = describe_failure(raised, SETTINGS)
        assert all(part in line for part in expected), line
        assert "secret-pw" not in line and "\n" not in line


def test_the_first_rule_in_the_table_wins_over_a_later_cause() -> None:
    # A topic error caused by an authorization failure is an authorization failure.
    topic_error = TopicNotFoundError("cannot describe")
    topic_error.__cause__ = kafka(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    assert describe_failure(topic_error, SETTINGS).startswith("authorization denied")
    assert RULES[0].name == "authorization denied"


def test_no_known_error_still_gets_a_line() -> None:
    assert describe_failure(None, SETTINGS) == "processing stopped after an error"
