"""Every private part of Quix Streams the processor uses, and the wording of Quix's and
librdkafka's messages it recognises: one file to read, with its tests, when Quix is upgraded.

The processor is written for one Quix Streams version (`QUIX_VERSION`, pinned in
`pyproject.toml`) and checks it at start (`check_version`). Each function below says why it
exists and what the public alternative would cost.

Relied on without a private name (tested, not called here):
* `shutdown.BoundedStopApplication`: Quix's `Application.run` marks itself running only once
  its consumer is set up, overwriting a stop that arrived meanwhile, so a stop is repeated
  until `run` returns; and a failed partition assignment can hang its consumer's close.
* `Application.run` processes one record at a time through every step of the chain, the
  window's closed intervals included, before it reads the next: `placement` hands the bounds
  of a record's step to the partials it closes (and checks it is the same record).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from importlib.metadata import version
from types import FrameType
from typing import Any, Final, cast

from quixstreams import Application, message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Row
from quixstreams.models.topics import Topic, TopicConfig
from quixstreams.state.types import WindowedState

QUIX_VERSION: Final = "3.28.1"

# Quix turns a topic creation refused by the ACLs into a text with this, dropping the code.
TOPIC_CREATE_DENIED_TEXT: Final = "are allowed for your credentials"

# What librdkafka, Quix and a client's error callback write for each failed attempt to reach
# a broker: the connection error itself, and librdkafka's _TRANSPORT (-195) and
# _ALL_BROKERS_DOWN (-187), by name or by Quix's code field.
CONNECTION_LOSS_TEXTS: Final = (
    "Connect to ",
    "brokers are down",
    "_TRANSPORT",
    "_ALL_BROKERS_DOWN",
    'code="-195"',
    'code="-187"',
)

# Quix's WARNING for each backpressure of a sink (the sink logs its own line, with the cause).
BACKPRESSURE_LINE_TEXT: Final = "Backpressure for sink"

# What libpq says when the server answers and refuses the login or the database: waiting does
# not cure these, unlike a server that does not answer.
POSTGRES_REFUSAL_TEXTS: Final = (
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # role "...", database "..."
    "permission denied",
)


def installed_version() -> str:
    return version("quixstreams")


def version_mismatch(installed: str, accept_other: bool) -> tuple[bool, str] | None:
    """None when `installed` is the version these internals were written for; else whether
    the processor may start anyway (`accept_other`) and the one line that says so."""
    if installed == QUIX_VERSION:
        return None
    line = (
        f"Quix Streams {installed} is installed, but the processor relies on internals of "
        f"Quix Streams {QUIX_VERSION} (login_stream/quix_internals.py)"
    )
    if accept_other:
        return True, f"{line}; starting anyway (ACCEPT_OTHER_QUIX_VERSION)"
    return False, (
        f"{line}; install quixstreams=={QUIX_VERSION}, or set ACCEPT_OTHER_QUIX_VERSION=true "
        "to run at your own risk"
    )


class AssignmentAtClose(Exception):
    """A partition assignment that the consumer's close handed out, refused unread."""


def refuse_assignments_at_close(app: Application) -> None:
    """Make the close of `app`'s consumer refuse any partition assignment it hands out.

    Why: librdkafka's close serves what is still queued, also an assignment that arrived after
    the last poll. Quix's handler of it would open the state stores and read the committed
    offsets, which the closing client refuses (`_DESTROY`) or leaves unanswered until Quix's
    30 s timeout: a clean stop would end as a failure, or past its deadline. Nothing will read
    that assignment, so its handler raises `AssignmentAtClose` before doing anything, and the
    close raises that (`refused_at_close`). How: the private `InternalConsumer.close` and
    `Application._on_assign` (the handler `run` subscribes with) are wrapped once, nothing per
    record. Public alternative: none (Quix has no hook between its last poll and the close).
    """
    consumer = app._consumer
    close: Callable[[], None] = consumer.close
    on_assign: Callable[[Any, list[Any]], None] = app._on_assign
    closing = threading.Event()

    def close_refusing_assignments() -> None:
        closing.set()
        try:
            close()
        finally:
            closing.clear()

    def on_assign_unless_closing(client: Any, partitions: list[Any]) -> None:
        if closing.is_set():
            raise AssignmentAtClose(f"{len(partitions)} partition(s) assigned during the close")
        on_assign(client, partitions)

    consumer.close = close_refusing_assignments  # type: ignore[method-assign]
    app._on_assign = on_assign_unless_closing  # type: ignore[method-assign,assignment]


def refused_at_close(error: BaseException) -> bool:
    """Whether `error` is a close that refused an assignment (`refuse_assignments_at_close`);
    Quix raises the handler's error as the cause of its `PartitionAssignmentError`."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, AssignmentAtClose):
            return True
        cause = cause.__cause__
    return False


def rekey_in_place(sdf: StreamingDataFrame, name: str, key: str) -> StreamingDataFrame:
    """Give every record the key `key` without moving it out of its partition.

    Quix windows and state are per message key within a partition; one constant key makes each
    partition one aggregate. The public `group_by` does exactly this on a one-partition topic
    (`_single_partition_groupby`, called here) but on more partitions sends every event through
    a repartition topic into one partition: the cost the two stages exist to avoid.

    The public alternative, a key deserializer on the input and clock topics that returns the
    constant, re-keys for free but loses the message's own key, which a dead letter keeps
    (records read the key Quix hands them); and Quix passes a message without a key to no key
    deserializer, so its windows would skip such a message.
    """
    return sdf._single_partition_groupby(name, lambda _record: key)


def window_time(sdf: StreamingDataFrame, window_name: str, key: str) -> Callable[[], int | None]:
    """A reader of the latest time the window `window_name` of `sdf` has stored for `key`
    in the partition of the record being processed (None before the partition's first
    record), as of that record: the window's store transaction of the current checkpoint
    (`sdf.processing_context.checkpoint.get_store_transaction`), read through the public
    `WindowedTransactionState.get_latest_timestamp`.

    The public alternative, a stateful step keeping its own copy of that time, costs a state
    read per record through Quix's `State` and a second store with its changelog."""
    context = sdf.processing_context
    stream_id = sdf.stream_id
    # Per partition, the transaction last seen and its state for `key`: a state is made per
    # transaction, not per record (a new checkpoint brings a new transaction).
    states: dict[int, tuple[object, WindowedState[Any, Any]]] = {}

    def latest() -> int | None:
        partition = message_context().partition
        transaction = context.checkpoint.get_store_transaction(
            stream_id=stream_id, partition=partition, store_name=window_name
        )
        cached = states.get(partition)
        if cached is None or cached[0] is not transaction:
            state = cast(WindowedState[Any, Any], transaction.as_state(prefix=key))
            cached = states[partition] = (transaction, state)
        # Quix answers 0 for a key it has not seen.
        return cached[1].get_latest_timestamp() or None

    return latest


def produce_inline(
    sdf: StreamingDataFrame,
    topic: Topic,
    value: Any,
    key: Any,
    timestamp_ms: int,
    headers: Any,
) -> None:
    """Produce one message to `topic` from inside a step, in the checkpoint's transaction,
    as `to_topic` does (`StreamingDataFrame._produce`).

    The public alternative, `to_topic` on a branch of its own, makes Quix pickle a copy of
    every record, written or not, for the branch: more CPU than all the parsing."""
    sdf._produce(topic, value, key, timestamp_ms, headers)


def produce_to_partition(
    sdf: StreamingDataFrame,
    topic: Topic,
    partition: int,
    value: Any,
    key: Any,
    timestamp_ms: int,
    headers: Any,
) -> None:
    """Produce one message to partition `partition` of `topic` from inside a step, in the
    checkpoint's transaction (`StreamingDataFrame._producer.produce_row`).

    `to_topic` cannot choose a partition; the public alternative, a topic of one partition
    for the partials, is read by Quix in time order with input partition 0 and made that
    partition wait on every partial's commit (a backlog drained a fifth slower)."""
    row = Row(value, key, timestamp_ms, message_context(), headers)
    sdf._producer.produce_row(row, topic, key=key, partition=partition, timestamp=timestamp_ms)


def create_topics_without_pause(
    app: Application, create: Callable[[str, TopicConfig], None]
) -> None:
    """Have `create` make each topic `app` is about to create (its name and Quix's
    configuration for it), before Quix's own creation runs.

    Why: Quix creates each topic in a request of its own and sleeps a whole second before it
    reads the answer (`TopicAdmin._finalize_create`), so a new pipeline's first start paid a
    second for each of its topics and changelogs. `create` waits on the broker's answer
    instead; Quix's creation then finds the topic made and returns at once, and anything
    `create` could not make is still Quix's to make and report. How: the private
    `TopicManager._create_topic`, called only for a topic the broker does not have. Public
    alternative: creating the changelog topics ahead, under names built the way Quix's private
    `_internal_name` builds them.
    """
    manager = app._topic_manager
    create_in_quix = manager._create_topic

    def create_first(topic: Topic, timeout: float, create_timeout: float) -> None:
        if topic.create_config is not None:
            create(topic.name, topic.create_config)
        create_in_quix(topic, timeout=timeout, create_timeout=create_timeout)

    manager._create_topic = create_first  # type: ignore[method-assign]


def read_topics_through(
    app: Application, read: Callable[[str, Callable[[], Topic]], Topic]
) -> None:
    """Have every read of a topic's configuration by `app` go through `read`, which gets the
    topic's name and the read to make.

    Why: Quix lists the topics from one broker, then asks for the configuration of those
    listed from any broker (`TopicAdmin.inspect_topics`); one that has not learnt of a topic
    made a moment ago answers UNKNOWN_TOPIC_OR_PART, and Quix raises that, which failed a
    processor's start on three brokers; right after creating a topic Quix reads it back, and
    a broker that has not learnt of it yet does not list it (TopicNotFoundError). How: the
    private `TopicManager._fetch_topic`, called once per topic at set-up, and again after
    creating one. Public alternative: none short of waiting, before the set-up,
    until every broker knows every topic, which the admin client cannot ask a chosen broker.
    """
    manager = app._topic_manager
    fetch = manager._fetch_topic

    def fetch_through_read(topic: Topic) -> Topic:
        return read(topic.name, lambda: fetch(topic))

    manager._fetch_topic = fetch_through_read  # type: ignore[method-assign]


def producer_config(app: Application) -> dict[str, Any]:
    """The configuration Quix hands librdkafka for `app`'s producer, the one that writes every
    output of the exactly-once path (`Application._producer._producer._producer_config`).

    Why: what exactly-once rests on (idempotence, the transactional id, acks not weakened) is
    Quix's doing, and a test reads it here so an upgrade that changes it is noticed. Public
    alternative: none short of librdkafka's debug log of its configuration."""
    return dict(app._producer._producer._producer_config)


def time_checkpoint_commits(
    app: Application, started: Callable[[], None], finished: Callable[[], None]
) -> None:
    """Call `started` and `finished` around every checkpoint commit of `app`.

    Why: a commit can block for good inside librdkafka (see `commit_watch`), and only a watch
    on the commit itself tells that from a quiet or unreachable broker. How: Quix makes a new
    `Checkpoint` per checkpoint in the private `ProcessingContext.init_checkpoint`; its
    `commit` is wrapped there, once a second at most, nothing per record. Public alternative:
    none (Quix has no hook around its commit); the record callback alone cannot tell a stuck
    commit from quiet input.
    """
    context = app._processing_context
    init_checkpoint: Callable[[], None] = context.init_checkpoint

    def init_timed_checkpoint() -> None:
        init_checkpoint()
        checkpoint = context.checkpoint
        commit = checkpoint.commit

        def timed_commit(*args: Any, **kwargs: Any) -> None:
            started()
            try:
                commit(*args, **kwargs)
            finally:
                finished()

        checkpoint.commit = timed_commit  # type: ignore[method-assign]

    context.init_checkpoint = init_timed_checkpoint  # type: ignore[method-assign]


def innermost_calls(thread: threading.Thread, count: int) -> list[str]:
    """The innermost `count` Python calls `thread` is in, innermost first, as
    `module.qualified_name`.

    Why: a commit stuck inside librdkafka is named by the Quix call that entered the C client.
    How: CPython's `sys._current_frames` (documented, underscored). Public alternative:
    `faulthandler.dump_traceback` to a file, parsed back; no module names, more code.
    """
    frame: FrameType | None = (
        sys._current_frames().get(thread.ident) if thread.ident is not None else None
    )
    calls: list[str] = []
    while frame is not None and len(calls) < count:
        calls.append(f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}")
        frame = frame.f_back
    return calls
