"""Fixtures: a real Kafka broker for the integration tests, and per-test topic names.

The broker is, in order of preference: the address in `KAFKA_BOOTSTRAP_SERVERS`; a
testcontainers `confluentinc/cp-kafka` (KRaft) when a Docker engine answers and has or can
pull that image; else the project's own local broker started from the Apache Kafka jars.
Never a substitute.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Topics, fresh_topics

CP_KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"


def _docker_has_cp_kafka() -> bool:
    try:
        import docker

        client = docker.from_env()
        try:
            client.images.get(CP_KAFKA_IMAGE)
        except docker.errors.ImageNotFound:
            client.images.pull(CP_KAFKA_IMAGE)
    except Exception:  # no engine, or no registry: the local broker serves instead
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    address = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if address:
        yield address
    elif _docker_has_cp_kafka():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(CP_KAFKA_IMAGE).with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        from login_stream.local_broker import LocalBroker, free_port

        with LocalBroker(port=free_port()) as broker:
            yield broker.bootstrap_servers


@pytest.fixture
def topics(kafka_bootstrap: str) -> Topics:
    return fresh_topics(kafka_bootstrap)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
