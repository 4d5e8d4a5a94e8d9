"""The Quix Streams wiring: topics, the two stages, and the `Application`.

Each step is a named function from `events`, `placement`, `aggregation` or `merge`; this
module only connects them:

  Stage 1, per input partition, in the instance that owns the partition:

    user-login[p] --> read_message --+
                                     +--> one key per partition (in place)
    clock ticks[p] ------------------+      --> placed in time: late, future (state)
          --> invalid or late: original message, reason, origin headers --> DLQ topic
          --> tumbling window (reduce) --> partial counts of partition p, with the bounds
              of the step that closed it --> partials topic

  Stage 2, the merge, in the instance that owns the partials partition:

    partials --> merge (state: partials of open intervals, running totals)
             --> summaries once every partition reported --> log --> output topic

Events never leave the partition they were read from; only one small partial per partition
and interval crosses between processes. Lateness is judged by each partition's own time, so a
partition that trails another (a backlog, a slow instance) is never late because of it.

Placing keeps the latest time seen (the window's own watermark) and moves a record whose
interval has already closed into the open one, marked late, instead of letting the window
drop it, and a record stamped too far ahead of the clock likewise, as invalid: every message
read is counted exactly once somewhere (see `placement`). Invalid and late messages are
written to the dead-letter topic on their way to the window, in the one chain
of steps: a branch would make Quix copy every record for it (see
`place_and_write_dead_letters`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Final, cast

from quixstreams import Application, State, message_context
from quixstreams.app import MessageProcessedCallback
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Row
from quixstreams.models.serializers import SerializationContext, Serializer
from quixstreams.models.topics import Topic, TopicConfig
from quixstreams.models.types import HeadersTuples
from quixstreams.state.rocksdb import RocksDBOptions

from .aggregation import MILLIS_PER_SECOND, Counts, count_record, start_interval
from .clock import Ticker
from .connection import client_config, connection_config
from .events import (
    DeadLetter,
    InvalidRecord,
    LoginRecord,
    Record,
    is_dead_letter,
    parse_login,
)
from .merge import MergeState, Partial, empty_merge_state, merge_partial, waiting_for
from .metrics import Metrics
from .placement import KeyValueState, Placement, placed_time
from .settings import Settings
from .shutdown import BoundedStopApplication, StopDeadline

logger = logging.getLogger(__name__)

# Upstream keys are random UUIDs and carry no meaning; every event of a partition belongs to
# that partition's aggregate, and Quix windows are per key, so all records are re-keyed to this.
PARTITION_KEY: Final = "all"
# The name of the re-key step; it names the first stage's state stores and changelogs.
REKEY_NAME: Final = "global"
MERGE_STATE_KEY: Final = "merge"
PENDING_STATE_PREFIX: Final = "pending/"
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


def build_application(
    settings: Settings,
    deadline: StopDeadline,
    on_message_processed: MessageProcessedCallback | None = None,
) -> BoundedStopApplication:
    return BoundedStopApplication(
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
        producer_extra_config={"transactional.id": instance_identity(settings)},
    )


def stop_without_traceback(error: Exception, _source: Any, _logger: logging.Logger) -> bool:
    """Let an error stop processing without Quix's traceback: the processor reports it in
    one line that names the cause (see `cli.describe_failure`)."""
    logger.debug("processing stops on %r", error)
    return False


def instance_identity(settings: Settings) -> str:
    return f"{settings.consumer_group}-{settings.instance_id}"


def build_pipeline(app: Application, settings: Settings, metrics: Metrics) -> Ticker:
    """Wire both stages into `app`; returns the clock, which the caller starts and stops."""
    input_topic = app.topic(
        settings.input_topic,
        key_deserializer="bytes",
        value_deserializer="bytes",
        config=created_with(settings, settings.input_topic_partitions),
    )
    partitions = input_topic.broker_config.num_partitions or 1
    clock_topic = app.topic(
        settings.clock_topic_name,
        value_deserializer="json",
        config=created_with(settings, partitions),
    )
    check_partitions_unchanged(settings, partitions, clock_topic.broker_config.num_partitions)
    partials_topic = app.topic(
        settings.partials_topic_name,
        key_serializer="str",
        key_deserializer="str",
        value_serializer="json",
        value_deserializer="json",
        # The merge reads one partition, numbered past every input partition (see
        # `write_partials`); a topic made before that has one and is used as it is.
        config=created_with(settings, partitions + 1),
    )
    partials_partition = (partials_topic.broker_config.num_partitions or 1) - 1
    output_topic = app.topic(
        settings.output_topic,
        key_serializer="str",
        value_serializer="json",
        config=created_with(settings, 1),
    )
    dlq_topic = app.topic(
        settings.dlq_topic,
        key_serializer="bytes",
        value_serializer=OriginalMessageSerializer(),
        config=created_with(settings, 1),
    )
    duration_ms = settings.window_seconds * MILLIS_PER_SECOND
    grace_ms = settings.window_grace_seconds * MILLIS_PER_SECOND

    # Stage 1, per input partition, in the instance that owns it.
    records = app.dataframe(input_topic).apply(
        functools.partial(read_message, max_bytes=settings.max_message_bytes), metadata=True
    )
    sdf = rekey_in_place(records.concat(app.dataframe(clock_topic)), PARTITION_KEY)
    placement = Placement(
        duration_ms=duration_ms,
        grace_ms=grace_ms,
        by_event_time=settings.event_time == "event",
        future_tolerance_ms=int(settings.future_tolerance_seconds * MILLIS_PER_SECOND),
    )
    sdf = place_and_write_dead_letters(sdf, placement.place, dlq_topic, metrics)
    sdf = sdf.set_timestamp(placed_time)
    sdf = (
        sdf.tumbling_window(duration_ms=duration_ms, grace_ms=grace_ms, name=WINDOW_NAME)
        .reduce(reducer=count_record, initializer=start_interval)
        # Closing by partition checks one timestamp per record instead of scanning the key's
        # windows; it may let a record into an interval that has already closed, but the
        # late check above has moved every such record on.
        .final(closing_strategy="partition")
    )
    sdf = sdf.apply(
        functools.partial(partial_of_partition, partitions=partitions, placement=placement)
    )
    write_partials(sdf, partials_topic, partials_partition)

    # Stage 2: the partials of every partition merged into global summaries.
    summaries = app.dataframe(partials_topic).apply(
        functools.partial(merge_partials, metrics=metrics), stateful=True, expand=True
    )
    if not settings.emit_empty_intervals:
        summaries = summaries.filter(has_messages)
    summaries.update(log_summary).update(metrics.summary_published).to_topic(output_topic)

    return Ticker(
        client_config(settings),
        clock_topic.name,
        partitions,
        settings.clock_tick_seconds,
        PARTITION_KEY,
    )


def created_with(settings: Settings, partitions: int) -> TopicConfig:
    """How a topic the pipeline has to create is made; Quix derives its changelog topics'
    replication from the topics they belong to. An existing topic is used as it is."""
    return TopicConfig(
        num_partitions=partitions, replication_factor=settings.topic_replication_factor
    )


class PartitionsChanged(Exception):
    """The input topic's partitions differ from those the pipeline's state was built on."""


def check_partitions_unchanged(settings: Settings, partitions: int, clock: int | None) -> None:
    if clock is not None and clock != partitions:
        raise PartitionsChanged(
            f"INPUT_TOPIC={settings.input_topic} has {partitions} partitions, but consumer group "
            f"{settings.consumer_group} was set up for {clock} (its clock topic "
            f"{settings.clock_topic_name}); partitions cannot be added under an existing "
            "pipeline: start it anew with a new CONSUMER_GROUP and an empty STATE_DIR "
            "(its totals then start at 0)"
        )


def rekey_in_place(sdf: StreamingDataFrame, key: str) -> StreamingDataFrame:
    """Give every record the same key without moving it out of its partition.

    Quix windows and state are per message key within a partition, and upstream keys are
    random; one constant key makes each partition one aggregate. Quix's public `group_by`
    does exactly this on a one-partition topic, but on more partitions it sends every event
    through a repartition topic into one partition, the cost this stage exists to avoid.
    So its in-place path is called directly: a private method of the pinned Quix version
    (the multi-partition tests fail if it changes). See docs/two-stages.md.
    """
    return sdf._single_partition_groupby(REKEY_NAME, lambda _record: key)


def partial_of_partition(window: dict[str, Any], partitions: int, placement: Placement) -> Partial:
    """A closed window of this partition as the partial the merge takes in, with the bounds
    of the step that closed it (see `placement`)."""
    context = message_context()
    partition = context.partition
    if partition >= partitions:
        raise PartitionsChanged(
            f"a record of input partition {partition} arrived, but the pipeline was started "
            f"with {partitions} partitions; partitions cannot be added under an existing "
            "pipeline: start it anew with a new CONSUMER_GROUP and an empty STATE_DIR"
        )
    step = placement.bounds_of((context.topic, partition, context.offset))
    if step is None:
        # Quix closes windows only while it processes the record that moved time; if that
        # ever changes, the merge still counts exactly, waiting for the next partial.
        logger.error(
            "the interval %d-%d of input partition %d closed on a record that did not move "
            "time; its summary may come one interval later",
            window["start"] // MILLIS_PER_SECOND,
            window["end"] // MILLIS_PER_SECOND,
            partition,
        )
    return {
        "partition": partition,
        "partitions": partitions,
        "start_ms": window["start"],
        "end_ms": window["end"],
        "counts": window["value"],
        "closed_before_ms": None if step is None else step.closed_before_ms,
        "closed_until_ms": None if step is None else step.closed_until_ms,
    }


def write_partials(sdf: StreamingDataFrame, topic: Topic, partition: int) -> StreamingDataFrame:
    """Write every partial to one partition of `topic`: the merge sees them all, in the order
    each input partition sent them.

    Quix reads the partitions of one number across all of an application's topics in time
    order, and waits for an emptied one to be fetched again before it goes on. A partials
    partition numbered like an input partition made that input partition's reading wait on
    every partial's commit: a one-partition backlog drained a fifth slower. `to_topic` cannot pick a
    partition, so the partial is produced as it does (`_producer`, private to the pinned Quix
    version), with the partition given.
    """

    def write(partial: Partial, key: Any, timestamp_ms: int, headers: Any) -> None:
        row = Row(partial, key, timestamp_ms, message_context(), headers)
        sdf._producer.produce_row(row, topic, key=key, partition=partition, timestamp=timestamp_ms)

    return sdf.update(write, metadata=True)


def merge_partials(
    partial: Partial, state: State[str, Any], metrics: Metrics
) -> list[dict[str, Any]]:
    merge: MergeState = state.get(MERGE_STATE_KEY) or empty_merge_state()
    pending_before = len(merge["pending_starts"])
    misplaced_before = merge.get("misplaced", 0)
    summaries = merge_partial(merge, PendingInState(state), partial)
    state.set(MERGE_STATE_KEY, merge)
    metrics.partials_misplaced(merge["misplaced"] - misplaced_before)
    # Normally one interval is pending while the partitions report it; one line for every
    # further interval held back, naming the partitions it waits for.
    if len(merge["pending_starts"]) > max(pending_before, 1):
        logger.warning(
            "summaries from %d held back: waiting for input partitions %s",
            merge["pending_starts"][0] // MILLIS_PER_SECOND,
            waiting_for(merge),
        )
    return summaries


class PendingInState:
    """The merge's pending intervals in Quix state, one key each."""

    def __init__(self, state: State[str, Any]) -> None:
        self._state = state

    def get(self, start_ms: int) -> Counts | None:
        counts: Counts | None = self._state.get(f"{PENDING_STATE_PREFIX}{start_ms}")
        return counts

    def put(self, start_ms: int, counts: Counts) -> None:
        self._state.set(f"{PENDING_STATE_PREFIX}{start_ms}", counts)

    def delete(self, start_ms: int) -> None:
        self._state.delete(f"{PENDING_STATE_PREFIX}{start_ms}")


def read_message(
    raw: bytes | None, key: bytes | None, _timestamp: int, _headers: Any, max_bytes: int
) -> LoginRecord | InvalidRecord:
    return parse_login(raw, max_bytes, key)


def place_and_write_dead_letters(
    sdf: StreamingDataFrame,
    place: Callable[[Record, Any, int, Any, KeyValueState], Record],
    dlq_topic: Topic,
    metrics: Metrics,
) -> StreamingDataFrame:
    """Place every record in time (`place`, see `placement`), write the invalid and late
    ones to `dlq_topic`, and pass every record on.

    `to_topic` on a branch of its own would do the same, but Quix pickles a copy of every
    record, dead letter or not, for each extra branch: more CPU than all the parsing. So the
    dead letters are produced in line, through the dataframe's own producer as `to_topic`
    does it (`_produce`, private to the pinned Quix version), inside the same transaction.
    Placing and writing share one step: each step costs Quix's per-record machinery, and a
    record is known to be late only once it is placed.
    """

    def step(
        record: Record, key: Any, timestamp_ms: int, headers: Any, state: State[str, Any]
    ) -> Record:
        placed = place(record, key, timestamp_ms, headers, state)
        if is_dead_letter(placed):
            letter = cast(DeadLetter, placed)
            sdf._produce(
                dlq_topic, letter, letter["key"], timestamp_ms, dead_letter_headers(letter, headers)
            )
            metrics.dead_letter_written(letter["reason"])
        return placed

    return sdf.apply(step, stateful=True, metadata=True)


def dead_letter_headers(record: DeadLetter, headers: HeadersTuples | None) -> HeadersTuples:
    """Why the message is here and where it came from, beside any headers it already had."""
    source = message_context()
    return [
        *(headers or []),
        (DLQ_REASON_HEADER, record["reason"].encode()),
        (DLQ_TOPIC_HEADER, source.topic.encode()),
        (DLQ_PARTITION_HEADER, str(source.partition).encode()),
        (DLQ_OFFSET_HEADER, str(source.offset).encode()),
    ]


class OriginalMessageSerializer(Serializer):
    """Writes a dead letter as the message it was made from, byte for byte."""

    def __call__(self, record: DeadLetter, ctx: SerializationContext) -> bytes:
        # A tombstone stays a tombstone: Kafka takes a null value although Quix's type says no.
        return record["original"]  # type: ignore[return-value]


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
