"""The Quix Streams wiring: topics, the `StreamingDataFrame`, and the `Application`.

Each step is a named function from `events` or `aggregation`; this module only connects them:

    user-login --> read_message --+
                                  +--> event time --> one global key --> late check (state)
    clock ticks ------------------+        +--> invalid or late: original message, reason
                                           |    and origin headers --> DLQ topic
                                           +--> tumbling window (reduce) --> running totals
                                                (state) --> summaries --> log --> output topic

The late check keeps the latest time seen (the window's own watermark) and moves a record
whose interval has already closed into the open one, marked late, instead of letting the
window drop it: every message read is counted exactly once somewhere. Invalid and late
messages leave for the dead-letter topic at one branch point, because Quix copies the record
for every branch of the flow.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Final

from quixstreams import Application, State, message_context
from quixstreams.app import MessageProcessedCallback
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models.serializers import SerializationContext, Serializer
from quixstreams.models.topics import TopicConfig
from quixstreams.models.types import HeadersTuples
from quixstreams.state.rocksdb import RocksDBOptions

from .aggregation import (
    MILLIS_PER_SECOND,
    Counts,
    closing_summaries,
    count_record,
    empty_counts,
    is_closed,
    placement_time,
    start_interval,
)
from .clock import Ticker
from .events import (
    DeadLetter,
    InvalidRecord,
    LoginRecord,
    Origin,
    Record,
    carried,
    is_dead_letter,
    parse_login,
    placed_late,
    uncarried,
)
from .settings import Settings
from .shutdown import BoundedStopApplication, StopDeadline

logger = logging.getLogger(__name__)

# Upstream keys are random UUIDs and carry no meaning; every event belongs to the one
# pipeline-wide aggregate, and Quix windows are per key, so all records are re-keyed to this.
GLOBAL_KEY: Final = "all"
TOTALS_STATE_KEY: Final = "totals"
LAST_END_STATE_KEY: Final = "last_end_ms"
WATERMARK_STATE_KEY: Final = "watermark_ms"
WINDOW_NAME: Final = "login-interval"
DLQ_REASON_HEADER: Final = "dlq-reason"
DLQ_TOPIC_HEADER: Final = "dlq-source-topic"
DLQ_PARTITION_HEADER: Final = "dlq-source-partition"
DLQ_OFFSET_HEADER: Final = "dlq-source-offset"

# Reading the input aligned with the clock topic, Quix pauses a partition whose buffer is full
# and asks the broker for more only when that buffer has run dry, in a call that waits this
# long for a full batch. At Quix's 1 s default a backlog drain stalled for a second every
# 10,000 messages; a short wait keeps it moving and costs nothing measurable when idle.
CONSUMER_POLL_SECONDS: Final = 0.05

# librdkafka pre-fetches up to 64 MiB per consumer by default; Quix buffers 10,000 messages
# itself, so a few MiB ahead keep a backlog drain just as fast for far less memory.
CONSUMER_PREFETCH_KIB: Final = 8 * 1024

# The state is one small aggregate, so RocksDB's 1 GiB default block cache is pure waste.
ROCKSDB_BLOCK_CACHE_BYTES: Final = 8 * 1024 * 1024


@dataclass(frozen=True)
class Pipeline:
    dataframe: StreamingDataFrame
    ticker: Ticker


def build_application(
    settings: Settings,
    deadline: StopDeadline,
    on_message_processed: MessageProcessedCallback | None = None,
) -> Application:
    return BoundedStopApplication(
        deadline=deadline,
        broker_address=settings.kafka_bootstrap_servers,
        consumer_group=settings.consumer_group,
        auto_offset_reset=settings.auto_offset_reset,
        state_dir=settings.state_dir,
        commit_interval=settings.commit_interval_seconds,
        consumer_poll_timeout=CONSUMER_POLL_SECONDS,
        processing_guarantee=settings.processing_guarantee,
        rocksdb_options=RocksDBOptions(block_cache_size=ROCKSDB_BLOCK_CACHE_BYTES),
        loglevel=settings.log_level,
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
        producer_extra_config={"transactional.id": instance_identity(settings)},
    )


def stop_without_traceback(error: Exception, _source: Any, _logger: logging.Logger) -> bool:
    """Let an error stop processing without Quix's traceback: the processor reports it in
    one line that names the cause (see `cli.describe_failure`)."""
    logger.debug("processing stops on %r", error)
    return False


def instance_identity(settings: Settings) -> str:
    return f"{settings.consumer_group}-{settings.processor_instance_id}"


def build_pipeline(app: Application, settings: Settings) -> Pipeline:
    input_topic = app.topic(
        settings.input_topic, key_deserializer="bytes", value_deserializer="bytes"
    )
    partitions = input_topic.broker_config.num_partitions or 1
    clock_topic = app.topic(
        settings.clock_topic_name,
        value_deserializer="json",
        config=TopicConfig(num_partitions=partitions, replication_factor=1),
    )
    output_topic = app.topic(settings.output_topic, key_serializer="str", value_serializer="json")
    dlq_topic = app.topic(
        settings.dlq_topic, key_serializer="bytes", value_serializer=OriginalMessageSerializer()
    )

    records = app.dataframe(input_topic).apply(
        functools.partial(read_message, max_bytes=settings.max_message_bytes), metadata=True
    )
    sdf = records.concat(app.dataframe(clock_topic))
    duration_ms = settings.window_seconds * MILLIS_PER_SECOND
    grace_ms = settings.window_grace_seconds * MILLIS_PER_SECOND
    if settings.event_time == "event":
        sdf = sdf.set_timestamp(functools.partial(event_time_or_record_time, grace_ms=grace_ms))
    sdf = sdf.group_by(global_key, name="global")
    sdf = sdf.apply(
        functools.partial(place_late_records, duration_ms=duration_ms, grace_ms=grace_ms),
        stateful=True,
        metadata=True,
    ).set_timestamp(placed_time)
    dead_letters = sdf.filter(is_dead_letter).set_headers(dead_letter_headers)
    dead_letters.to_topic(dlq_topic, key=original_key)

    sdf = (
        sdf.tumbling_window(duration_ms=duration_ms, grace_ms=grace_ms, name=WINDOW_NAME)
        .reduce(reducer=count_record, initializer=start_interval)
        # Closing by partition checks one timestamp per record instead of scanning the key's
        # windows; it may let a record into an interval that has already closed, but the
        # late check above has moved every such record on.
        .final(closing_strategy="partition")
    )
    sdf = sdf.apply(
        functools.partial(publish_intervals, duration_ms=duration_ms), stateful=True, expand=True
    )
    if not settings.emit_empty_intervals:
        sdf = sdf.filter(has_messages)
    sdf = sdf.update(log_summary)
    sdf = sdf.to_topic(output_topic)

    ticker = Ticker(
        settings.kafka_bootstrap_servers,
        clock_topic.name,
        partitions,
        settings.clock_tick_seconds,
        GLOBAL_KEY,
    )
    return Pipeline(dataframe=sdf, ticker=ticker)


def read_message(
    raw: bytes | None, key: bytes | None, _timestamp: int, _headers: Any, max_bytes: int
) -> LoginRecord | InvalidRecord:
    source = message_context()
    origin: Origin = {
        "topic": source.topic,
        "partition": source.partition,
        "offset": source.offset,
        "key": carried(key),
    }
    return parse_login(raw, max_bytes, origin)


def dead_letter_headers(
    record: DeadLetter, _key: Any, _timestamp: int, headers: HeadersTuples | None
) -> HeadersTuples:
    """Why the message is here and where it came from, beside any headers it already had."""
    origin = record["origin"]
    return [
        *(headers or []),
        (DLQ_REASON_HEADER, record["reason"].encode()),
        (DLQ_TOPIC_HEADER, origin["topic"].encode()),
        (DLQ_PARTITION_HEADER, str(origin["partition"]).encode()),
        (DLQ_OFFSET_HEADER, str(origin["offset"]).encode()),
    ]


class OriginalMessageSerializer(Serializer):
    """Writes a dead letter as the message it was made from, byte for byte."""

    def __call__(self, record: DeadLetter, ctx: SerializationContext) -> bytes:
        # A tombstone stays a tombstone: Kafka takes a null value although Quix's type says no.
        return uncarried(record["original"])  # type: ignore[return-value]


def original_key(record: DeadLetter) -> bytes | None:
    return uncarried(record["origin"]["key"])


def event_time_or_record_time(
    record: Record, _key: Any, record_ms: int, _headers: Any, grace_ms: int
) -> int:
    return placement_time(record, record_ms, grace_ms)


def global_key(_record: Record) -> str:
    return GLOBAL_KEY


def place_late_records(
    record: Record,
    _key: Any,
    timestamp_ms: int,
    _headers: Any,
    state: State[str, Any],
    duration_ms: int,
    grace_ms: int,
) -> Record:
    """Track the latest time seen; re-place a record whose interval has closed at that time.

    The window would drop such a record with only a log line; re-placed, it is counted (late
    logins as late) in the interval that is open now.
    """
    watermark_ms: int | None = state.get(WATERMARK_STATE_KEY)
    if watermark_ms is None or timestamp_ms > watermark_ms:
        state.set(WATERMARK_STATE_KEY, timestamp_ms)
        return record
    if is_closed(timestamp_ms, watermark_ms, duration_ms, grace_ms):
        return placed_late(record, watermark_ms)
    return record


def placed_time(record: Record, _key: Any, timestamp_ms: int, _headers: Any) -> int:
    return record.get("at_ms", timestamp_ms)


def publish_intervals(
    window: dict[str, Any], state: State[str, Any], duration_ms: int
) -> list[dict[str, Any]]:
    """Fold a closed window into the persisted totals and build its summary, preceded by
    zero summaries for any intervals skipped since the last one, so the series has no holes."""
    # Merged over empty counts so totals stored before a counter existed still load.
    totals: Counts = {**empty_counts(), **(state.get(TOTALS_STATE_KEY) or {})}
    summaries, totals = closing_summaries(
        totals, state.get(LAST_END_STATE_KEY), window["start"], window["end"], window["value"]
    )
    state.set(TOTALS_STATE_KEY, totals)
    state.set(LAST_END_STATE_KEY, window["end"])
    return summaries


def has_messages(summary: dict[str, Any]) -> bool:
    return bool(
        summary["interval_messages_consumed"]
        or summary["interval_invalid_message_count"]
        or summary["interval_late_message_count"]
    )


def log_summary(summary: dict[str, Any]) -> None:
    logger.info(
        "interval %d-%d: %d logins %s, missing %s, invalid %d, late %d | totals: %d logins %s",
        summary["timestamp_start"],
        summary["timestamp_end"],
        summary["interval_messages_consumed"],
        summary["interval_device_type_count"],
        summary["interval_missing_field_count"],
        summary["interval_invalid_message_count"],
        summary["interval_late_message_count"],
        summary["total_messages_consumed"],
        summary["total_device_type_count"],
    )
