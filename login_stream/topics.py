"""The pipeline's topics: how the ones it has to create are made, and the check that the
input has the partitions its state was built on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from quixstreams.models.topics import TopicConfig

from .connection import client_config
from .settings import Settings


class PartitionsChanged(Exception):
    """The input topic's partitions differ from those the pipeline's state was built on."""


def created_with(settings: Settings, partitions: int) -> TopicConfig:
    """How a topic the pipeline has to create is made; Quix derives its changelog topics'
    replication from the topics they belong to. An existing topic is used as it is."""
    return TopicConfig(
        num_partitions=partitions, replication_factor=settings.topic_replication_factor
    )


def creating(settings: Settings) -> Callable[[str, TopicConfig], None]:
    """A function that creates a topic and waits for the broker's answer, for Quix to call
    before its own creation (`quix_internals.create_topics_without_pause`). What it cannot
    make (already made by another instance, denied, a replication beyond the brokers) is left
    to Quix's creation, which reports it."""
    admin = AdminClient(client_config(settings))

    def create(name: str, config: TopicConfig) -> None:
        new_topic = NewTopic(
            name,
            num_partitions=config.num_partitions,
            replication_factor=config.replication_factor,
            config=config.extra_config,
        )
        futures = admin.create_topics(
            [new_topic], request_timeout=settings.kafka_connect_timeout_seconds
        )
        for future in futures.values():
            with contextlib.suppress(KafkaException):
                future.result()

    return create


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
