"""The Quix Streams `Application` of the processor: how it connects, commits, keeps state and
reports errors. What runs inside it is wired in `pipeline`."""

from __future__ import annotations

import logging
from typing import Any, Final

from quixstreams.app import MessageProcessedCallback
from quixstreams.state.rocksdb import RocksDBOptions

from .aggregation import MILLIS_PER_SECOND
from .connection import connection_config
from .quix_internals import create_topics_without_pause, read_topics_through
from .settings import Settings
from .shutdown import BoundedStopApplication, StopDeadline
from .topics import asking_again_while_unknown, creating

logger = logging.getLogger(__name__)

# Reading the input aligned with the clock topic, Quix pauses a partition whose buffer is full
# and asks the broker for more only when that buffer has run dry, in a call that waits this
# long for a full batch. At Quix's 1 s default a backlog drain stalled for a second every
# 10,000 messages; a short wait keeps it moving and costs nothing measurable when idle.
CONSUMER_POLL_SECONDS: Final = 0.05

# librdkafka pre-fetches up to 64 MiB per consumer by default; Quix buffers 10,000 messages
# itself, so a few MiB ahead keep a backlog drain just as fast for far less memory.
CONSUMER_PREFETCH_KIB: Final = 8 * 1024

# librdkafka (2.12 and 2.16 alike) can wait for good in `send_offsets_to_transaction` once the
# group's coordinator has died and left the cluster's metadata: nothing asks for the new
# coordinator until one of the producer's broker connections changes state (librdkafka #5511;
# docs/librdkafka-send-offsets-hang.md). A stuck producer is idle, so closing idle connections
# after a few seconds brings that change, and the call goes on; a producer at work keeps its
# connections busy and pays at most a reconnect after a quiet spell.
PRODUCER_IDLE_CONNECTION_MS: Final = 5_000

# The state is one small aggregate, so RocksDB's 1 GiB default block cache is pure waste.
ROCKSDB_BLOCK_CACHE_BYTES: Final = 8 * 1024 * 1024


def build_application(
    settings: Settings,
    deadline: StopDeadline,
    on_message_processed: MessageProcessedCallback | None = None,
) -> BoundedStopApplication:
    app = BoundedStopApplication(
        deadline=deadline,
        broker_address=connection_config(settings),
        consumer_group=settings.consumer_group,
        auto_offset_reset=settings.auto_offset_reset,
        state_dir=settings.instance_state_dir,
        commit_interval=settings.commit_interval_seconds,
        consumer_poll_timeout=CONSUMER_POLL_SECONDS,
        processing_guarantee=settings.processing_guarantee,
        rocksdb_options=RocksDBOptions(block_cache_size=ROCKSDB_BLOCK_CACHE_BYTES),
        # Quix's lines go through the processor's own handler and format (see `logs`).
        loglevel=None,
        on_message_processed=on_message_processed,
        on_consumer_error=stop_without_traceback,
        on_processing_error=stop_without_traceback,
        on_producer_error=stop_without_traceback,
        # A static group member: a restarted processor takes its partitions back at once
        # instead of waiting out its crashed predecessor's session, so the session can be long
        # enough to ride out a broker restart.
        consumer_extra_config={
            "group.instance.id": instance_identity(settings),
            "session.timeout.ms": settings.consumer_session_timeout_seconds * MILLIS_PER_SECOND,
            "queued.max.messages.kbytes": CONSUMER_PREFETCH_KIB,
        },
        # Quix picks a random transactional.id per start; after a crash the old one's open
        # transaction would then hold back read_committed readers until it times out (60 s).
        # A stable id lets the restarted processor abort it immediately.
        producer_extra_config={
            "transactional.id": instance_identity(settings),
            "connections.max.idle.ms": PRODUCER_IDLE_CONNECTION_MS,
        },
    )
    made: set[str] = set()
    create_topics_without_pause(app, creating(settings, made))
    timeout = settings.kafka_connect_timeout_seconds
    read_topics_through(
        app, lambda name, read: asking_again_while_unknown(read, timeout, name in made)
    )
    return app


def stop_without_traceback(error: Exception, _source: Any, _logger: logging.Logger) -> bool:
    """Let an error stop processing without Quix's traceback: the processor reports it in
    one line that names the cause (see `failures`)."""
    logger.debug("processing stops on %r", error)
    return False


def instance_identity(settings: Settings) -> str:
    return f"{settings.consumer_group}-{settings.instance_id}"
