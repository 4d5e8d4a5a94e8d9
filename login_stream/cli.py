"""Process entry points: settings, logging, start-up and the exit codes a user sees."""

from __future__ import annotations

import argparse
import functools
import logging
import signal
import sys
from typing import Final

from confluent_kafka import KafkaException

from .application import build_application
from .broker_watch import BrokerWatch, wait_for_listed_brokers
from .commit_watch import CommitWatch
from .connection import client_config
from .error_reports import VERSION, ErrorReports
from .failures import describe_failure, kafka_reason
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
from .pipeline import build_pipeline
from .quix_internals import installed_version, time_checkpoint_commits, version_mismatch
from .settings import ConfigError, Settings, load_settings
from .shutdown import StopDeadline, StopRequests, arm_on_stop_signals

logger = logging.getLogger("login_stream")

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_CONFIG_ERROR = 2
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


def run_processor(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python app.py",
        description="The login-stream processor; configured by environment variables "
        "(see the README and .env.example).",
    )
    parser.add_argument("--version", action="version", version=f"login-stream {VERSION}")
    parser.parse_args(argv)
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
    reports = ErrorReports(settings)
    code = _start(settings, stop_requests, reports)
    if code != EXIT_OK:
        reports.fatal()
    return code


def _start(settings: Settings, stop_requests: StopRequests, reports: ErrorReports) -> int:
    mismatch = version_mismatch(installed_version(), settings.accept_other_quix_version)
    if mismatch is not None:
        starts, line = mismatch
        if not starts:
            logger.error("%s", line)
            return EXIT_CONFIG_ERROR
        logger.warning("%s", line)
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
            kafka_reason(exc),
        )
        return EXIT_RUNTIME_ERROR
    wait_for_listed_brokers(client_config(settings), settings.kafka_connect_timeout_seconds)
    with state_lock:
        if stop_requests.requested:
            logger.info("login-stream processor stopped before it started")
            return EXIT_OK
        return _process(settings, cluster_id, stop_requests, reports)


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


def _process(
    settings: Settings, cluster_id: str, stop_requests: StopRequests, reports: ErrorReports
) -> int:
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
        before_exit=reports.fatal,
    )
    arm_on_stop_signals(deadline)
    try:
        app = build_application(settings, deadline, on_message_processed=progress.record_processed)
        stop_requests.attach(app)
        ticker = build_pipeline(app, settings, metrics)
        # The pipeline's topics exist now, and nothing has been read yet.
        claim_state(settings, cluster_id)
        watch = BrokerWatch(
            client_config(settings),
            settings.input_topic,
            settings.consumer_session_timeout_seconds,
            app.fail,
        )
        commits = CommitWatch(settings.commit_stall_seconds, on_stuck=deadline.end_now)
        progress.require(commits.health)
        time_checkpoint_commits(app, commits.started, commits.finished)
        ticker.start()
        watch.start()
        commits.start()
        try:
            app.run()
        finally:
            commits.stop()
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
