"""The pipeline's topics: how the ones it has to create are made, and the check that the
input has the partitions its state was built on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from quixstreams.models.topics import TopicConfig
from quixstreams.models.topics.exceptions import TopicNotFoundError

from .connection import client_config
from .settings import Settings

# How soon a topic the cluster's metadata does not show yet is asked for again.
METADATA_RETRY_SECONDS: Final = 0.2


T = TypeVar("T")


class PartitionsChanged(Exception):
    """The input topic's partitions differ from those the pipeline's state was built on."""


def created_with(settings: Settings, partitions: int) -> TopicConfig:
    """How a topic the pipeline has to create is made; Quix derives its changelog topics'
    replication from the topics they belong to. An existing topic is used as it is."""
    return TopicConfig(
        num_partitions=partitions, replication_factor=settings.topic_replication_factor
    )


def creating(settings: Settings, made: set[str]) -> Callable[[str, TopicConfig], None]:
    """A function that creates a topic and waits until the cluster's metadata shows it, for
    Quix to call before its own creation (`quix_internals.create_topics_without_pause`); the
    name of each topic it made, or found made, is added to `made`. What it cannot make
    (denied, a replication beyond the brokers) is left to Quix's creation, which reports it."""
    admin = AdminClient(client_config(settings))
    timeout = settings.kafka_connect_timeout_seconds

    def create(name: str, config: TopicConfig) -> None:
        new_topic = NewTopic(
            name,
            num_partitions=config.num_partitions,
            replication_factor=config.replication_factor,
            config=config.extra_config,
        )
        for future in admin.create_topics([new_topic], request_timeout=timeout).values():
            try:
                future.result()
            except KafkaException as error:
                if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    return
        made.add(name)
        # The answer comes once the controller has the topic; a broker learns of it a moment
        # later, and Quix reads the topic back at once from whichever broker it asks.
        deadline = time.monotonic() + timeout
        while not known(admin, name, timeout) and time.monotonic() < deadline:
            time.sleep(METADATA_RETRY_SECONDS)

    return create


def asking_again_while_unknown(read: Callable[[], T], timeout: float, just_made: bool = False) -> T:
    """`read()`, asked again while a broker answers UNKNOWN_TOPIC_OR_PART, and, for a topic
    `just_made` by the pipeline, while the broker asked does not list it (Quix's
    TopicNotFoundError), until `timeout` seconds have passed.

    A broker learns of a topic made on another a moment later: a read of a topic one broker
    has just listed, or the pipeline has just made, can reach one that does not know it yet.
    Only for a topic known to exist: for one that does not, the same answer would be waited
    on in vain."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read()
        except KafkaException as error:
            unknown = error.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() >= deadline:
                raise
        except TopicNotFoundError:
            if not just_made or time.monotonic() >= deadline:
                raise
        time.sleep(METADATA_RETRY_SECONDS)


def known(admin: AdminClient, name: str, timeout: float) -> bool:
    """Whether the broker asked lists topic `name`, as Quix's own check reads it."""
    return name in admin.list_topics(timeout=timeout).topics


def check_partitions_unchanged(settings: Settings, partitions: int, clock: int | None) -> None:
    """The clock topic has one partition per input partition the pipeline was set up with."""
    if clock is not None and clock != partitions:
        raise PartitionsChanged(
            f"INPUT_TOPIC={settings.input_topic} has {partitions} partitions, but consumer group "
            f"{settings.consumer_group} was set up for {clock} (its clock topic "
            f"{settings.clock_topic_name}); partitions cannot be added under an existing "
            "pipeline: start it anew with a new CONSUMER_GROUP and an empty STATE_DIR "
            "(its totals then start at 0)"
        )


def check_partition_known(partition: int, partitions: int) -> None:
    """A record of `partition` reached the pipeline set up with `partitions`."""
    if partition >= partitions:
        raise PartitionsChanged(
            f"a record of input partition {partition} arrived, but the pipeline was started "
            f"with {partitions} partitions; partitions cannot be added under an existing "
            "pipeline: start it anew with a new CONSUMER_GROUP and an empty STATE_DIR"
        )
