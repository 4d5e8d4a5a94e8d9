"""Exactly once through crashes and broker restarts (real broker, real processes).

Events are produced in real time, stamped with the wall clock, while the processor is killed
with SIGKILL and restarted, or while the broker itself is restarted. At the end every interval
must have been published exactly once, and the totals must equal the exact counts produced.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from devtools.local_broker import LocalBroker, free_port
from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import (
    TopicReader,
    Topics,
    assert_connection_losses_spaced,
    create_topics,
    running_processor,
    summary_reader,
)

WINDOW_SECONDS = 2
EVENTS = 20_000
EVENTS_PER_SECOND = 1_000
GARBAGE_RATE = 0.02
KILLS = 3
# Crash points: a random moment this long after the processor has shown progress.
KILL_DELAY_SECONDS = (0.2, 2.5)
SETTINGS = {"WINDOW_SECONDS": str(WINDOW_SECONDS), "WINDOW_GRACE_SECONDS": "2"}


def wait_for_progress(reader: TopicReader, timeout: float = 60.0) -> None:
    """Wait until one more summary than before has been published."""
    reader.wait_for(len(reader.messages) + 1, timeout)


def finish(reader: TopicReader, scenario: Scenario, producer: RealTimeProducer) -> None:
    producer.join()
    assert producer.failed == []
    reader.wait_for_interval(max(scenario.windows))


def test_sigkill_three_times_loses_and_duplicates_nothing(topics: Topics, tmp_path: Path) -> None:
    rng = random.Random(5)
    scenario = Scenario(rng=rng, first_window=0, window_seconds=WINDOW_SECONDS)
    producer = RealTimeProducer(
        topics.bootstrap, topics.input, scenario, EVENTS, EVENTS_PER_SECOND, GARBAGE_RATE
    )
    state, log = tmp_path / "state", tmp_path / "processor.log"

    with summary_reader(topics) as reader:
        producer.start()
        for _ in range(KILLS):
            with running_processor(topics, state, log, **SETTINGS) as processor:
                wait_for_progress(reader)
                time.sleep(rng.uniform(*KILL_DELAY_SECONDS))
                processor.stop(signal.SIGKILL)
        with running_processor(topics, state, log, **SETTINGS) as processor:
            # Running, not still starting: the stop below is the graceful one under test.
            processor.wait_until_ready()
            finish(reader, scenario, producer)
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()

    assert sum(w.messages + w.invalid for w in scenario.windows.values()) == EVENTS
    assert_series(reader.summaries, scenario.expected())


def test_broker_restart_mid_stream_is_survived(tmp_path: Path) -> None:
    with LocalBroker(port=free_port(), root=tmp_path / "kafka") as broker:
        bootstrap = broker.bootstrap_servers
        topics = Topics(bootstrap, "user-login", "user-login-processed", "user-login-dlq", "g")
        create_topics(topics)
        scenario = Scenario(rng=random.Random(6), first_window=0, window_seconds=WINDOW_SECONDS)
        producer = RealTimeProducer(
            bootstrap, topics.input, scenario, EVENTS // 2, EVENTS_PER_SECOND, GARBAGE_RATE
        )
        state, log = tmp_path / "state", tmp_path / "processor.log"

        with summary_reader(topics) as reader:
            with running_processor(topics, state, log, **SETTINGS) as processor:
                producer.start()
                wait_for_progress(reader)
                broker.restart()
                finish(reader, scenario, producer)
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
                output = processor.log()
            reader.read_to_end()

    assert_connection_losses_spaced(output)

    assert_series(reader.summaries, scenario.expected())
