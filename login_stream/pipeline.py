"""The Quix Streams wiring: topics, the `StreamingDataFrame`, and the `Application`.

Each step is a named function from `events` or `aggregation`; this module only connects them:

    raw bytes -> parse_login -+-> event time -> one global key -> tumbling window (reduce)
                              |   -> running totals (state) -> summary -> log -> output topic
                              +-> invalid ones: original bytes + reason headers -> DLQ topic
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Final

from quixstreams import Application, State, message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.state.rocksdb import RocksDBOptions

from .aggregation import (
    MILLIS_PER_SECOND,
    Counts,
    add_counts,
    count_record,
    empty_counts,
    start_interval,
    summarize,
)
from .events import DeadLetter, Record, is_invalid, parse_login, without_original
from .settings import Settings

logger = logging.getLogger(__name__)

# Upstream keys are random UUIDs and carry no meaning; every event belongs to the one
# pipeline-wide aggregate, and Quix windows are per key, so all records are re-keyed to this.
GLOBAL_KEY: Final = "all"
TOTALS_STATE_KEY: Final = "totals"
DLQ_REASON_HEADER: Final = "dlq-reason"
DLQ_TOPIC_HEADER: Final = "dlq-source-topic"
DLQ_PARTITION_HEADER: Final = "dlq-source-partition"
DLQ_OFFSET_HEADER: Final = "dlq-source-offset"
WINDOW_NAME: Final = "login-interval"

# The state is one small aggregate, so RocksDB's 1 GiB default block cache is pure waste.
ROCKSDB_BLOCK_CACHE_BYTES: Final = 8 * 1024 * 1024


def build_application(settings: Settings) -> Application:
    return Application(
        broker_address=settings.kafka_bootstrap_servers,
        consumer_group=settings.consumer_group,
        auto_offset_reset=settings.auto_offset_reset,
        state_dir=settings.state_dir,
        commit_interval=settings.commit_interval_seconds,
        processing_guarantee=settings.processing_guarantee,
        rocksdb_options=RocksDBOptions(block_cache_size=ROCKSDB_BLOCK_CACHE_BYTES),
        loglevel=settings.log_level,
    )


def build_pipeline(app: Application, settings: Settings) -> StreamingDataFrame:
    input_topic = app.topic(
        settings.input_topic, key_deserializer="bytes", value_deserializer="bytes"
    )
    output_topic = app.topic(settings.output_topic, key_serializer="str", value_serializer="json")
    dlq_topic = app.topic(settings.dlq_topic, key_serializer="bytes", value_serializer="bytes")

    records = app.dataframe(input_topic).apply(
        functools.partial(parse_login, max_bytes=settings.max_message_bytes)
    )
    dead_letters = records.filter(is_invalid).set_headers(dead_letter_headers)
    dead_letters.apply(original_value).to_topic(dlq_topic)

    sdf = records.apply(without_original)
    if settings.event_time == "event":
        sdf = sdf.set_timestamp(event_time_or_record_time)
    sdf = sdf.group_by(global_key, name="global")
    sdf = (
        sdf.tumbling_window(
            duration_ms=settings.window_seconds * MILLIS_PER_SECOND, name=WINDOW_NAME
        )
        .reduce(reducer=count_record, initializer=start_interval)
        .final()
    )
    sdf = sdf.apply(add_running_totals, stateful=True)
    sdf = sdf.update(log_summary)
    sdf = sdf.to_topic(output_topic)
    return sdf


def dead_letter_headers(
    record: DeadLetter, _key: Any, _timestamp: int, headers: Any
) -> list[tuple[str, bytes]]:
    """Why the message is here and where it came from, beside any headers it already had."""
    source = message_context()
    return [
        *(headers or []),
        (DLQ_REASON_HEADER, record["reason"].encode()),
        (DLQ_TOPIC_HEADER, source.topic.encode()),
        (DLQ_PARTITION_HEADER, str(source.partition).encode()),
        (DLQ_OFFSET_HEADER, str(source.offset).encode()),
    ]


def original_value(record: DeadLetter) -> bytes | None:
    return record["original"]


def event_time_or_record_time(record: Record, _key: Any, record_ms: int, _headers: Any) -> int:
    """The event's own time when it has a usable one, else the Kafka record timestamp."""
    event_ms = record.get("event_ms")
    return event_ms if isinstance(event_ms, int) else record_ms


def global_key(_record: Record) -> str:
    return GLOBAL_KEY


def add_running_totals(window: dict[str, Any], state: State[str, Any]) -> dict[str, Any]:
    """Fold a closed window into the persisted totals and build its published summary."""
    interval: Counts = window["value"]
    totals = add_counts(state.get(TOTALS_STATE_KEY) or empty_counts(), interval)
    state.set(TOTALS_STATE_KEY, totals)
    return summarize(window["start"], window["end"], interval, totals)


def log_summary(summary: dict[str, Any]) -> None:
    logger.info(
        "interval %d-%d: %d logins %s, missing %s, invalid %d | totals: %d logins %s",
        summary["timestamp_start"],
        summary["timestamp_end"],
        summary["interval_messages_consumed"],
        summary["interval_device_type_count"],
        summary["interval_missing_field_count"],
        summary["interval_invalid_message_count"],
        summary["total_messages_consumed"],
        summary["total_device_type_count"],
    )
