"""The Quix Streams wiring: topics, the two stages, and the `Application`.

Each step is a named function from `events`, `placement`, `dead_letters`, `aggregation` or
`merge`, and each use of a Quix internal is one from `quix_internals`; this module only
connects them:

  Stage 1, per input partition, in the instance that owns the partition:

    user-login[p] --> read_message --+
                                     +--> one key per partition (in place)
    clock ticks[p] ------------------+      --> placed in time against the window's: late, future
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
from typing import Final

from quixstreams import Application
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.dataframe.windows.time_based import TimeWindow

from .aggregation import MILLIS_PER_SECOND, count_record, has_messages, log_summary, start_interval
from .clock import Ticker
from .connection import client_config
from .dead_letters import OriginalMessageSerializer, place_and_write_dead_letters
from .events import read_message
from .merge import merge_in_state
from .metrics import Metrics
from .placement import Placement, partial_of_window, placed_time
from .quix_internals import produce_to_partition, rekey_in_place, window_time
from .settings import Settings
from .topics import check_partitions_unchanged, created_with

# Upstream keys are random UUIDs and carry no meaning; every event of a partition belongs to
# that partition's aggregate, and Quix windows are per key, so all records are re-keyed to this.
PARTITION_KEY: Final = "all"
# The name of the re-key step; it names the first stage's state stores and changelogs.
REKEY_NAME: Final = "global"
WINDOW_NAME: Final = "login-interval"


def login_window(sdf: StreamingDataFrame, duration_ms: int, grace_ms: int) -> TimeWindow:
    """The first stage's window on `sdf`: each interval's counts, in a store of its own."""
    return sdf.tumbling_window(duration_ms=duration_ms, grace_ms=grace_ms, name=WINDOW_NAME).reduce(
        reducer=count_record, initializer=start_interval
    )


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
    # The merge reads the partials' last partition, numbered past every input partition: Quix
    # reads the partitions of one number across an application's topics in time order, and a
    # partials partition numbered like an input partition made it wait on every partial's
    # commit. A partials topic made before that has one partition and is used as it is.
    partials_topic = app.topic(
        settings.partials_topic_name,
        key_serializer="str",
        key_deserializer="str",
        value_serializer="json",
        value_deserializer="json",
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
    placement = Placement(
        duration_ms=duration_ms,
        grace_ms=grace_ms,
        by_event_time=settings.event_time == "event",
        future_tolerance_ms=int(settings.future_tolerance_seconds * MILLIS_PER_SECOND),
    )

    # Stage 1, per input partition, in the instance that owns it.
    records = app.dataframe(input_topic).apply(
        functools.partial(read_message, max_bytes=settings.max_message_bytes), metadata=True
    )
    sdf = rekey_in_place(records.concat(app.dataframe(clock_topic)), REKEY_NAME, PARTITION_KEY)
    # Placing reads the partition's time from the window's store (see `placement`).
    window_name = login_window(sdf, duration_ms, grace_ms).name
    watermark = window_time(sdf, window_name, PARTITION_KEY)
    sdf = place_and_write_dead_letters(sdf, placement.place, watermark, dlq_topic, metrics)
    sdf = sdf.set_timestamp(placed_time)
    # Closing by partition checks one timestamp per record instead of scanning the key's
    # windows; it may let a record into an interval that has already closed, but placing
    # has moved every such record on.
    sdf = login_window(sdf, duration_ms, grace_ms).final(closing_strategy="partition")
    sdf = sdf.apply(
        functools.partial(partial_of_window, partitions=partitions, placement=placement)
    )
    sdf.update(
        functools.partial(produce_to_partition, sdf, partials_topic, partials_partition),
        metadata=True,
    )

    # Stage 2: the partials of every partition merged into global summaries.
    summaries = app.dataframe(partials_topic).apply(
        functools.partial(merge_in_state, metrics=metrics), stateful=True, expand=True
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
