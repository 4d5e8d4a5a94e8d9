"""A replicated cluster: three brokers, every topic with three replicas and a write needing two
(`min.insync.replicas=2`), as in production. A processor restarted while any one of the three
brokers is down (killed, as in a crash) starts, and the series goes on exact.

The processor runs as an orchestrator runs it: restarted when it exits with code 1 after a
checkpoint commit stuck inside librdkafka (COMMIT_STALL_SECONDS, short here), which a broker's
crash can cause; the series must be exact through such restarts too."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_broker import LocalCluster, free_port
from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import (
    Processor,
    TopicReader,
    Topics,
    fresh_topics,
    summary_reader,
)

pytestmark = pytest.mark.cluster

BROKERS = 3
WINDOW_SECONDS = 2
SETTINGS = {
    "WINDOW_SECONDS": str(WINDOW_SECONDS),
    "WINDOW_GRACE_SECONDS": "2",
    "TOPIC_REPLICATION_FACTOR": str(BROKERS),
    "COMMIT_STALL_SECONDS": "20",
}
STUCK = "a checkpoint commit has not returned"
WAIT_SLICE_SECONDS = 5.0
PUBLISHED_WITHIN_SECONDS = 120.0
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


def wait_supervised(
    reader: TopicReader, processor: Processor, topics: Topics, state: Path, log: Path, start: int
) -> Processor:
    """Until the interval at `start` is published, restarting the processor as an orchestrator
    would when it ends itself on a stuck commit; any other exit fails, with its log."""
    for _ in range(int(PUBLISHED_WITHIN_SECONDS / WAIT_SLICE_SECONDS)):
        try:
            reader.wait_for_interval(start, timeout=WAIT_SLICE_SECONDS)
            return processor
        except AssertionError:
            if processor.running():
                continue
            code = processor.wait_for_exit(0)
            assert code == 1 and STUCK in processor.log(), processor.log()
            processor = Processor(topics, state, log, **SETTINGS)
    raise AssertionError(
        f"interval {start} not published in {PUBLISHED_WITHIN_SECONDS}s\n{processor.log()}"
    )


def run_supervised(
    reader: TopicReader, topics: Topics, state: Path, log: Path, scenario: Scenario
) -> None:
    """A processor (restarted when it ends itself on a stuck commit) through live input,
    until the input's last interval is published; then stopped gracefully."""
    processor = Processor(topics, state, log, **SETTINGS)
    try:
        produce_live(topics.bootstrap, topics.input, scenario)
        processor = wait_supervised(reader, processor, topics, state, log, max(scenario.windows))
        assert processor.stop(signal.SIGTERM) == 0, processor.log()
    finally:
        if processor.running():
            processor.stop(signal.SIGKILL)


@pytest.mark.parametrize("down", range(BROKERS))
def test_a_processor_restarted_with_any_one_broker_killed_goes_on_exactly(
    cluster: LocalCluster, down: int, tmp_path: Path
) -> None:
    topics = fresh_topics(cluster.bootstrap_servers)
    scenario = Scenario(rng=random.Random(20 + down), first_window=0, window_seconds=WINDOW_SECONDS)
    state, log = tmp_path / "state", tmp_path / "processor.log"
    with summary_reader(topics) as reader:
        # All three up: the pipeline makes its topics, three replicas each.
        run_supervised(reader, topics, state, log, scenario)
        stopped = cluster.brokers[down]
        stopped.kill()
        try:
            run_supervised(reader, topics, state, log, scenario)
        finally:
            stopped.start()
        reader.read_to_end()
    assert_series(reader.summaries, scenario.expected())
