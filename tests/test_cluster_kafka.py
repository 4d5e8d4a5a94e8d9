"""A replicated cluster: three brokers, every topic with three replicas and a write needing two
(`min.insync.replicas=2`), as in production. A processor restarted while any one of the three
brokers is down (killed, as in a crash) starts, and the series goes on exact."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_broker import LocalCluster, free_port
from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import fresh_topics, running_processor, summary_reader

pytestmark = pytest.mark.cluster

BROKERS = 3
WINDOW_SECONDS = 2
SETTINGS = {
    "WINDOW_SECONDS": str(WINDOW_SECONDS),
    "WINDOW_GRACE_SECONDS": "2",
    "TOPIC_REPLICATION_FACTOR": str(BROKERS),
}
EVENTS = 600
EVENTS_PER_SECOND = 300


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    ports: list[int] = []
    while len(ports) < BROKERS:
        if (port := free_port()) not in ports:
            ports.append(port)
    with LocalCluster(ports, root=tmp_path_factory.mktemp("kafka")) as running:
        yield running


def produce_live(bootstrap: str, topic: str, scenario: Scenario) -> None:
    producer = RealTimeProducer(bootstrap, topic, scenario, EVENTS, EVENTS_PER_SECOND)
    producer.start()
    producer.join()


@pytest.mark.parametrize("down", range(BROKERS))
def test_a_processor_restarted_with_any_one_broker_killed_goes_on_exactly(
    cluster: LocalCluster, down: int, tmp_path: Path
) -> None:
    topics = fresh_topics(cluster.bootstrap_servers)
    scenario = Scenario(rng=random.Random(20 + down), first_window=0, window_seconds=WINDOW_SECONDS)
    state, log = tmp_path / "state", tmp_path / "processor.log"
    with summary_reader(topics) as reader:
        # All three up: the pipeline makes its topics, three replicas each.
        with running_processor(topics, state, log, **SETTINGS) as processor:
            produce_live(topics.bootstrap, topics.input, scenario)
            reader.wait_for_interval(max(scenario.windows))
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        stopped = cluster.brokers[down]
        stopped.kill()
        try:
            with running_processor(topics, state, log, **SETTINGS) as processor:
                produce_live(topics.bootstrap, topics.input, scenario)
                reader.wait_for_interval(max(scenario.windows))
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
        finally:
            stopped.start()
        reader.read_to_end()
    assert_series(reader.summaries, scenario.expected())
