"""Process entry points: settings, logging, start-up and the exit codes a user sees."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from confluent_kafka import KafkaException
from quixstreams.state.exceptions import InvalidChangelogOffset

from .health import HealthServer, Progress
from .pipeline import build_application, build_pipeline
from .settings import ConfigError, Settings, load_settings

logger = logging.getLogger("login_stream")

EXIT_OK = 0
EXIT_RUNTIME_ERROR = 1
EXIT_CONFIG_ERROR = 2


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s [%(name)s] %(message)s",
        stream=sys.stderr,
    )


def describe(settings: Settings) -> str:
    return (
        f"bootstrap={settings.kafka_bootstrap_servers} input={settings.input_topic} "
        f"output={settings.output_topic} group={settings.consumer_group} "
        f"window={settings.window_seconds}s grace={settings.window_grace_seconds}s "
        f"event_time={settings.event_time} "
        f"guarantee={settings.processing_guarantee} offset_reset={settings.auto_offset_reset} "
        f"state_dir={settings.state_dir}"
    )


class _StopRequested(BaseException):
    """SIGTERM or SIGINT arrived before Quix took over the signals in `Application.run`.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` in start-up code
    swallows the request."""


def _stop_requested(_signum: int, _frame: FrameType | None) -> None:
    raise _StopRequested


def run_processor() -> int:
    # Until the application runs (and installs its own graceful handlers), a stop request
    # ends start-up cleanly instead of killing the process half-way.
    signal.signal(signal.SIGTERM, _stop_requested)
    signal.signal(signal.SIGINT, _stop_requested)
    try:
        return _run()
    except _StopRequested:
        logger.info("login-stream processor stopped before it started")
        return EXIT_OK


def _run() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"login-stream: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    configure_logging(settings.log_level)
    logger.info("login-stream processor starting: %s", describe(settings))
    progress = Progress(settings.health_stale_seconds)
    health = None
    if settings.health_port:
        try:
            health = HealthServer(progress, settings.health_host, settings.health_port)
        except OSError as exc:
            logger.error(
                "cannot serve health endpoints on %s:%d (%s); set HEALTH_PORT (0 = off)",
                settings.health_host,
                settings.health_port,
                exc.strerror or exc,
            )
            return EXIT_RUNTIME_ERROR
        health.start()
    try:
        app = build_application(settings, on_message_processed=progress.record_processed)
        pipeline = build_pipeline(app, settings)
        pipeline.ticker.start()
        try:
            app.run()
        finally:
            pipeline.ticker.stop()
    except KafkaException as exc:
        logger.error("Kafka error: %s", exc.args[0] if exc.args else exc)
        return EXIT_RUNTIME_ERROR
    except InvalidChangelogOffset:
        logger.error(
            "the local state in STATE_DIR=%s is ahead of its changelog on this Kafka cluster "
            "(a new or reset broker?); delete that directory and the processor rebuilds it "
            "from the changelog",
            settings.state_dir,
        )
        return EXIT_RUNTIME_ERROR
    finally:
        if health is not None:
            health.stop()
    logger.info("login-stream processor stopped")
    return EXIT_OK
