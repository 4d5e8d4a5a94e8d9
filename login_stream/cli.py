"""Process entry points: settings, logging, start-up and the exit codes a user sees."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Iterator
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

from .broker_watch import BrokersLost, BrokerWatch
from .connection import client_config
from .health import HealthServer, Progress
from .local_state import (
    AuthenticationFailed,
    Claim,
    StateDirError,
    claim_state_dir,
    current_cluster_id,
    current_owner,
    lock_state_dir,
)
from .logs import configure_logging
from .metrics import Metrics
from .pipeline import PartitionsChanged, build_application, build_pipeline, instance_identity
from .settings import ConfigError, Settings, load_settings
from .shutdown import StopDeadline, StopRequests

logger = logging.getLogger("login_stream")

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_CONFIG_ERROR = 2
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
# Quix turns a topic creation refused by the ACLs into this text, dropping the error code.
QUIX_TOPIC_CREATE_DENIED: Final = "are allowed for your credentials"
# After an error nothing is committed on the way out, so a stop that takes longer is stuck.
FAILED_STOP_SECONDS: Final = 5.0


def describe(settings: Settings) -> str:
    return (
        f"bootstrap={settings.kafka_bootstrap_servers} "
        f"security={settings.kafka_security_protocol} input={settings.input_topic} "
        f"output={settings.output_topic} group={settings.consumer_group} "
        f"window={settings.window_seconds}s grace={settings.window_grace_seconds}s "
        f"event_time={settings.event_time} "
        f"guarantee={settings.processing_guarantee} offset_reset={settings.auto_offset_reset} "
        f"instance={settings.instance_id} state_dir={settings.instance_state_dir}"
    )


def run_processor() -> int:
    # Until the application runs (and installs its own graceful handlers), a stop request is
    # kept and ends start-up cleanly instead of killing the process half-way.
    stop_requests = StopRequests()
    signal.signal(signal.SIGTERM, stop_requests)
    signal.signal(signal.SIGINT, stop_requests)
    return _run(stop_requests)


def _run(stop_requests: StopRequests) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"login-stream: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    configure_logging(settings.log_level, settings.log_format)
    logger.info("login-stream processor starting: %s", describe(settings))
    try:
        state_lock = lock_state_dir(settings.instance_state_dir)
        cluster_id = current_cluster_id(
            client_config(settings), settings.kafka_connect_timeout_seconds
        )
    except StateDirError as exc:
        logger.error("%s", exc)
        return EXIT_RUNTIME_ERROR
    except AuthenticationFailed as exc:
        logger.error(
            "the Kafka brokers at KAFKA_BOOTSTRAP_SERVERS=%s refused this client (%s); check "
            "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME, "
            "KAFKA_SASL_PASSWORD and the KAFKA_SSL_* certificates",
            settings.kafka_bootstrap_servers,
            exc,
        )
        return EXIT_RUNTIME_ERROR
    except KafkaException as exc:
        logger.error(
            "no Kafka broker answered at KAFKA_BOOTSTRAP_SERVERS=%s within %.0f s (%s); "
            "check that setting and that the broker runs",
            settings.kafka_bootstrap_servers,
            settings.kafka_connect_timeout_seconds,
            _kafka_reason(exc),
        )
        return EXIT_RUNTIME_ERROR
    with state_lock:
        if stop_requests.requested:
            logger.info("login-stream processor stopped before it started")
            return EXIT_OK
        return _process(settings, cluster_id, stop_requests)


def claim_state(settings: Settings, cluster_id: str) -> None:
    """Check that STATE_DIR holds this cluster's state; run before any record is read."""
    owner = current_owner(
        client_config(settings),
        cluster_id,
        settings.clock_topic_name,
        settings.kafka_connect_timeout_seconds,
    )
    claim = claim_state_dir(
        settings.instance_state_dir, owner, settings.state_rebuild_on_cluster_change
    )
    if claim is Claim.REBUILT:
        logger.warning(
            "dropped the state of another Kafka cluster from STATE_DIR=%s "
            "(STATE_REBUILD_ON_CLUSTER_CHANGE); it is rebuilt from the changelog of %s",
            settings.instance_state_dir,
            owner.describe(),
        )


def _process(settings: Settings, cluster_id: str, stop_requests: StopRequests) -> int:
    progress = Progress(settings.health_stale_seconds)
    metrics = Metrics()
    health = None
    if settings.health_port:
        try:
            health = HealthServer(progress, settings.health_host, settings.health_port, metrics)
        except OSError as exc:
            logger.error(
                "cannot serve health endpoints on %s:%d (%s); set HEALTH_PORT (0 = off)",
                settings.health_host,
                settings.health_port,
                exc.strerror or exc,
            )
            return EXIT_RUNTIME_ERROR
        health.start()
    deadline = StopDeadline(
        FAILED_STOP_SECONDS,
        settings.shutdown_timeout_seconds,
        functools.partial(describe_failure, settings=settings),
    )
    try:
        app = build_application(settings, deadline, on_message_processed=progress.record_processed)
        stop_requests.attach(app)
        ticker = build_pipeline(app, settings, metrics)
        # The pipeline's topics exist now, and nothing has been read yet.
        claim_state(settings, cluster_id)
        watch = BrokerWatch(
            client_config(settings), settings.consumer_session_timeout_seconds, app.fail
        )
        ticker.start()
        watch.start()
        try:
            app.run()
        finally:
            watch.stop()
            ticker.stop()
    except StateDirError as exc:
        logger.error("%s", exc)
        return EXIT_RUNTIME_ERROR
    except Exception as exc:
        logger.error("%s", describe_failure(exc, settings))
        logger.debug("the error in full", exc_info=exc)
        return EXIT_RUNTIME_ERROR
    finally:
        deadline.disarm()
        if health is not None:
            health.stop()
    logger.info("login-stream processor stopped")
    return EXIT_OK


def describe_failure(error: BaseException | None, settings: Settings) -> str:
    """One line that names what went wrong and what to check, for the error that stopped
    processing (Quix wraps errors raised in a partition assignment, so causes are searched)."""
    causes = list(_causes(error))
    for cause in causes:
        denied = _authorization_denied(cause, settings)
        if denied is not None:
            return denied
    for cause in causes:
        if isinstance(cause, InvalidChangelogOffset | InvalidStoreChangelogOffset):
            return (
                f"the local state in STATE_DIR={settings.instance_state_dir} is ahead of its "
                "changelog on this Kafka cluster (a deleted or recreated changelog topic?); "
                "delete that directory and the processor rebuilds it from the changelog"
            )
    for cause in causes:
        if isinstance(cause, QuixStateError | PartitionStoreIsUsed | StoreTransactionFailed):
            return (
                f"the local state in STATE_DIR={settings.instance_state_dir} cannot be used "
                f"({type(cause).__name__}: {cause}); if it persists, delete that directory "
                "and the processor rebuilds it from the changelog"
            )
    for cause in causes:
        if isinstance(cause, BrokersLost):
            return (
                f"the Kafka brokers at KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}"
                f" did not answer for {cause.silent_seconds:.0f} s, longer than the consumer "
                f"session (CONSUMER_SESSION_TIMEOUT_SECONDS="
                f"{settings.consumer_session_timeout_seconds}): this processor has lost its "
                f"place in consumer group {settings.consumer_group}; check that the brokers run "
                "and are reachable, or raise that setting to ride out longer outages"
            )
        kafka_error = _kafka_error(cause)
        if isinstance(cause, KafkaBrokerUnavailableError) or (
            kafka_error is not None and kafka_error.code() == KafkaError._MSG_TIMED_OUT
        ):
            # Quix's own text names a constructor argument the operator cannot set.
            reason = kafka_error.str() if kafka_error is not None else "no broker reachable"
            return (
                f"the Kafka brokers at KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}"
                f" stopped answering ({reason}); check that they run and are reachable"
            )
    for cause in causes:
        if isinstance(cause, PartitionsChanged):
            return str(cause)
    for cause in causes:
        if isinstance(cause, TOPIC_ERRORS):
            return (
                f"{cause} ({type(cause).__name__}); check INPUT_TOPIC, OUTPUT_TOPIC, DLQ_TOPIC, "
                "that the broker lets this client create and read them, and "
                f"TOPIC_REPLICATION_FACTOR={settings.topic_replication_factor} against the "
                "number of brokers"
            )
    for cause in causes:
        if isinstance(cause, KafkaException):
            return f"Kafka error: {_kafka_reason(cause)}"
    if error is None:
        return "processing stopped after an error"
    cause = causes[-1]
    return f"processing stopped: {type(cause).__name__}: {cause}"


def _authorization_denied(cause: BaseException, settings: Settings) -> str | None:
    """The line for an error that the cluster's ACLs caused, None for any other error."""
    kafka_error = _kafka_error(cause)
    if kafka_error is not None and kafka_error.code() in AUTHORIZATION_ERRORS:
        code = kafka_error.code()
        detail = kafka_error.str()
    elif isinstance(cause, TopicPermissionError) or (
        isinstance(cause, CreateTopicFailure) and QUIX_TOPIC_CREATE_DENIED in str(cause)
    ):
        code = KafkaError.TOPIC_AUTHORIZATION_FAILED
        detail = str(cause)
    else:
        return None
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


def _kafka_error(cause: BaseException) -> KafkaError | None:
    if isinstance(cause, BaseKafkaException):
        return cause.error
    if isinstance(cause, KafkaException) and cause.args and isinstance(cause.args[0], KafkaError):
        return cause.args[0]
    return None


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _kafka_reason(exc: KafkaException) -> str:
    return str(exc.args[0]) if exc.args else str(exc)
