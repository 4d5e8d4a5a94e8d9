"""What the user is told when processing stops on an error: one line naming the cause and what
to check, chosen from a table of what is recognised.

Quix wraps errors raised inside a partition assignment, so every error in the chain of causes
is tried against the table, rule by rule in the table's order: the first rule that recognises
any cause gives the line. The order matters: an authorization failure also surfaces as a
Kafka error, and a lost broker as a topic error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from confluent_kafka import KafkaError, KafkaException
from quixstreams.kafka.exceptions import BaseKafkaException, KafkaBrokerUnavailableError
from quixstreams.models.topics.exceptions import (
    CreateTopicFailure,
    CreateTopicTimeout,
    TopicConfigurationError,
    TopicNotFoundError,
    TopicPermissionError,
)
from quixstreams.state.exceptions import (
    InvalidChangelogOffset,
    InvalidStoreChangelogOffset,
    PartitionStoreIsUsed,
    StoreTransactionFailed,
)
from quixstreams.state.exceptions import StateError as QuixStateError

from .application import instance_identity
from .broker_watch import BrokersLost
from .quix_internals import TOPIC_CREATE_DENIED_TEXT
from .settings import Settings
from .topics import PartitionsChanged

TOPIC_ERRORS: Final = (
    CreateTopicFailure,
    CreateTopicTimeout,
    TopicConfigurationError,
    TopicNotFoundError,
    TopicPermissionError,
)
AUTHORIZATION_ERRORS: Final = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    }
)


@dataclass(frozen=True)
class Rule:
    """One kind of failure: how it is recognised in a cause, and the line the user gets."""

    name: str
    recognises: Callable[[BaseException], bool]
    line: Callable[[BaseException, Settings], str]


def describe_failure(error: BaseException | None, settings: Settings) -> str:
    """The one line for the error that stopped processing (None: no error is known)."""
    causes = list(causes_of(error))
    for rule in RULES:
        for cause in causes:
            if rule.recognises(cause):
                return rule.line(cause, settings)
    if error is None:
        return "processing stopped after an error"
    cause = causes[-1]
    return f"processing stopped: {type(cause).__name__}: {cause}"


def causes_of(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def kafka_error_of(cause: BaseException) -> KafkaError | None:
    if isinstance(cause, BaseKafkaException):
        return cause.error
    if isinstance(cause, KafkaException) and cause.args and isinstance(cause.args[0], KafkaError):
        return cause.args[0]
    return None


def kafka_reason(exc: KafkaException) -> str:
    return str(exc.args[0]) if exc.args else str(exc)


def _denied_code(cause: BaseException) -> int | None:
    kafka_error = kafka_error_of(cause)
    if kafka_error is not None and kafka_error.code() in AUTHORIZATION_ERRORS:
        return int(kafka_error.code())
    if isinstance(cause, TopicPermissionError) or (
        isinstance(cause, CreateTopicFailure) and TOPIC_CREATE_DENIED_TEXT in str(cause)
    ):
        return int(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    return None


def _denied_line(cause: BaseException, settings: Settings) -> str:
    code = _denied_code(cause)
    kafka_error = kafka_error_of(cause)
    detail = kafka_error.str() if kafka_error is not None else str(cause)
    if code == KafkaError.GROUP_AUTHORIZATION_FAILED:
        resource = f"the consumer group CONSUMER_GROUP={settings.consumer_group}"
    elif code == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
        resource = (
            f"the transactional id {instance_identity(settings)} "
            f"(PROCESSING_GUARANTEE={settings.processing_guarantee})"
        )
    elif code == KafkaError.CLUSTER_AUTHORIZATION_FAILED:
        resource = "the cluster"
    else:
        resource = (
            f"a topic (INPUT_TOPIC={settings.input_topic}, OUTPUT_TOPIC={settings.output_topic}, "
            f"DLQ_TOPIC={settings.dlq_topic} or an internal one)"
        )
    return (
        f"authorization denied: the Kafka cluster refuses {_principal(settings)} access to "
        f"{resource} ({detail}); check the ACLs of that user: it needs to create, describe, "
        "read and write the pipeline's topics, to read with its consumer group and, for "
        "exactly-once, to write with its transactional id"
    )


def _principal(settings: Settings) -> str:
    if settings.kafka_sasl_username is not None:
        return f"KAFKA_SASL_USERNAME={settings.kafka_sasl_username}"
    if settings.kafka_ssl_certificate_location is not None:
        return (
            "the client certificate KAFKA_SSL_CERTIFICATE_LOCATION="
            f"{settings.kafka_ssl_certificate_location}"
        )
    return f"this client (KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol})"


def _state_ahead_line(_cause: BaseException, settings: Settings) -> str:
    return (
        f"the local state in STATE_DIR={settings.instance_state_dir} is ahead of its "
        "changelog on this Kafka cluster (a deleted or recreated changelog topic?); "
        "delete that directory and the processor rebuilds it from the changelog"
    )


def _state_unusable_line(cause: BaseException, settings: Settings) -> str:
    return (
        f"the local state in STATE_DIR={settings.instance_state_dir} cannot be used "
        f"({type(cause).__name__}: {cause}); if it persists, delete that directory "
        "and the processor rebuilds it from the changelog"
    )


def _brokers_lost_line(cause: BaseException, settings: Settings) -> str:
    silent = cause.silent_seconds if isinstance(cause, BrokersLost) else 0.0
    return (
        f"the Kafka brokers at KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}"
        f" did not answer for {silent:.0f} s, longer than the consumer "
        f"session (CONSUMER_SESSION_TIMEOUT_SECONDS="
        f"{settings.consumer_session_timeout_seconds}): this processor has lost its "
        f"place in consumer group {settings.consumer_group}; check that the brokers run "
        "and are reachable, or raise that setting to ride out longer outages"
    )


def _brokers_gone(cause: BaseException) -> bool:
    kafka_error = kafka_error_of(cause)
    return isinstance(cause, KafkaBrokerUnavailableError) or (
        kafka_error is not None and kafka_error.code() == KafkaError._MSG_TIMED_OUT
    )


def _brokers_gone_line(cause: BaseException, settings: Settings) -> str:
    # Quix's own text names a constructor argument the operator cannot set.
    kafka_error = kafka_error_of(cause)
    reason = kafka_error.str() if kafka_error is not None else "no broker reachable"
    return (
        f"the Kafka brokers at KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}"
        f" stopped answering ({reason}); check that they run and are reachable"
    )


def _topic_line(cause: BaseException, settings: Settings) -> str:
    return (
        f"{cause} ({type(cause).__name__}); check INPUT_TOPIC, OUTPUT_TOPIC, DLQ_TOPIC, "
        "that the broker lets this client create and read them, and "
        f"TOPIC_REPLICATION_FACTOR={settings.topic_replication_factor} against the "
        "number of brokers"
    )


def _kafka_line(cause: BaseException, _settings: Settings) -> str:
    assert isinstance(cause, KafkaException)
    return f"Kafka error: {kafka_reason(cause)}"


# In order: the first rule that recognises any cause of the error gives the line.
RULES: Final = (
    Rule("authorization denied", lambda c: _denied_code(c) is not None, _denied_line),
    Rule(
        "state ahead of its changelog",
        lambda c: isinstance(c, InvalidChangelogOffset | InvalidStoreChangelogOffset),
        _state_ahead_line,
    ),
    Rule(
        "state unusable",
        lambda c: isinstance(c, QuixStateError | PartitionStoreIsUsed | StoreTransactionFailed),
        _state_unusable_line,
    ),
    Rule(
        "brokers lost longer than the session",
        lambda c: isinstance(c, BrokersLost),
        _brokers_lost_line,
    ),
    Rule("brokers stopped answering", _brokers_gone, _brokers_gone_line),
    Rule("partitions changed", lambda c: isinstance(c, PartitionsChanged), lambda c, _s: str(c)),
    Rule("topic", lambda c: isinstance(c, TOPIC_ERRORS), _topic_line),
    Rule("Kafka error", lambda c: isinstance(c, KafkaException), _kafka_line),
)
