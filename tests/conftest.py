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

from devtools.local_broker import free_port
from devtools.local_postgres import LocalPostgres
from login_stream.settings import Settings
from tests.support import BOOTSTRAP_VARIABLE, Topics, fresh_topics

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


# The settings a user may have exported or written into a `.env`: none of them reaches a test.
USER_SETTINGS = frozenset(name.upper() for name in Settings.model_fields) - {BOOTSTRAP_VARIABLE}
# Quix Streams reads a few variables of its own, all with this prefix.
QUIX_PREFIX = "Quix__"


@pytest.fixture(autouse=True)
def without_the_users_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Every test runs as if the user had set nothing but `KAFKA_BOOTSTRAP_SERVERS` (the
    documented way to point the tests at a broker): no exported setting, and a working
    directory without the `.env` the README tells users to write beside the repository.
    Processes the tests start inherit both."""
    for name in list(os.environ):
        if name.upper() in USER_SETTINGS or name.startswith(QUIX_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs a Kafka broker (the shared one, or one of its own), so that
    `pytest -m "not integration"` runs the rest in seconds."""
    for item in items:
        if "kafka_bootstrap" in getattr(item, "fixturenames", ()) or item.path.stem.endswith(
            "_kafka"
        ):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    address = os.environ.get(BOOTSTRAP_VARIABLE)
    if address:
        yield address
    elif _docker_has_cp_kafka():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer(CP_KAFKA_IMAGE).with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        from devtools.local_broker import LocalBroker

        with LocalBroker(port=free_port()) as broker:
            yield broker.bootstrap_servers


@pytest.fixture
def topics(kafka_bootstrap: str) -> Topics:
    return fresh_topics(kafka_bootstrap)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture(scope="session")
def postgres() -> Iterator[LocalPostgres]:
    """A real PostgreSQL server of the tests' own (the machine's PostgreSQL binaries)."""
    with LocalPostgres(port=free_port()) as server:
        yield server
