"""The dead-letter topic: every invalid, late or future message, written whole, with why it is
there and where it came from in headers, in the checkpoint's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, cast

from quixstreams import message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models.serializers import SerializationContext, Serializer
from quixstreams.models.topics import Topic
from quixstreams.models.types import HeadersTuples

from .events import DeadLetter, Record, is_dead_letter
from .metrics import Metrics
from .quix_internals import produce_inline

REASON_HEADER: Final = "dlq-reason"
TOPIC_HEADER: Final = "dlq-source-topic"
PARTITION_HEADER: Final = "dlq-source-partition"
OFFSET_HEADER: Final = "dlq-source-offset"

# Places a record, given its Kafka timestamp and its partition's watermark (see `placement`).
PlaceStep = Callable[[Record, int, int | None], Record]


def place_and_write_dead_letters(
    sdf: StreamingDataFrame,
    place: PlaceStep,
    watermark: Callable[[], int | None],
    dlq_topic: Topic,
    metrics: Metrics,
) -> StreamingDataFrame:
    """Place every record in time (`place`, against the `watermark` of the record's
    partition), write the invalid, late and future ones to `dlq_topic`, and pass every record
    on.

    They are produced in line (`quix_internals.produce_inline`), not through a branch, and
    placing and writing share one step: each step costs Quix's per-record machinery, and a
    record is known to be late only once it is placed.
    """

    def step(record: Record, _key: Any, timestamp_ms: int, headers: Any) -> Record:
        placed = place(record, timestamp_ms, watermark())
        if is_dead_letter(placed):
            letter = cast(DeadLetter, placed)
            headers = dead_letter_headers(letter, headers)
            produce_inline(sdf, dlq_topic, letter, letter["key"], timestamp_ms, headers)
            metrics.dead_letter_written(letter["reason"])
        return placed

    return sdf.apply(step, metadata=True)


def dead_letter_headers(record: DeadLetter, headers: HeadersTuples | None) -> HeadersTuples:
    """Why the message is here and where it came from, beside any headers it already had."""
    source = message_context()
    return [
        *(headers or []),
        (REASON_HEADER, record["reason"].encode()),
        (TOPIC_HEADER, source.topic.encode()),
        (PARTITION_HEADER, str(source.partition).encode()),
        (OFFSET_HEADER, str(source.offset).encode()),
    ]


class OriginalMessageSerializer(Serializer):
    """Writes a dead letter as the message it was made from, byte for byte."""

    def __call__(self, record: DeadLetter, ctx: SerializationContext) -> bytes:
        # A tombstone stays a tombstone: Kafka takes a null value although Quix's type says no.
        return record["original"]  # type: ignore[return-value]
