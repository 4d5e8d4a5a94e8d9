"""Exactly once through crashes and broker restarts (real broker, real processes).

Events are produced in real time, stamped with the wall clock, while the processor is killed
with SIGKILL and restarted, or while the broker itself is restarted. At the end every interval
must have been published exactly once, and the totals must equal the exact counts produced;
through a broker restart longer than the grace, some events count as late instead.
"""

from __future__ import annotations

import itertools
import random
import signal
import time
from pathlib import Path
from typing import Any

from devtools.local_broker import LocalBroker, free_port
from tests.scenario import (
    RealTimeProducer,
    Scenario,
    assert_series,
    counted,
    counted_in_interval,
)
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
# Events written while the broker is away reach Kafka late, and Quix may read clock ticks
# ahead of records written just before the restart (it takes the input for caught up by
# librdkafka's high watermark, which is stale until the first fetch after reconnecting): the
# grace covers the restart and the clients' reconnection (up to 13 s measured), as the README
# asks of a user who wants the counts exact through a broker failover.
RESTART_GRACE_SECONDS = "30"


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


def test_broker_restart_within_the_grace_keeps_every_interval_exact(tmp_path: Path) -> None:
    summaries, scenario, output = restart_broker_mid_stream(tmp_path, RESTART_GRACE_SECONDS)

    assert_connection_losses_spaced(output)
    assert_series(summaries, scenario.expected())


def test_broker_restart_longer_than_the_grace_counts_every_event_once(tmp_path: Path) -> None:
    """Events the restart delays past the grace count as late, in a later interval: moved,
    never lost, never doubled (which ones depends on how long the clients took to reconnect)."""
    summaries, scenario, output = restart_broker_mid_stream(
        tmp_path, SETTINGS["WINDOW_GRACE_SECONDS"]
    )

    assert_connection_losses_spaced(output)
    for previous, summary in itertools.pairwise(summaries):
        assert summary["timestamp_start"] == previous["timestamp_end"]
        assert counted(summary) == counted(previous) + counted_in_interval(summary)
    assert counted(summaries[-1]) == EVENTS // 2
    # A late login is counted as late where it lands, never as a login of another interval
    # (a late invalid message stays invalid there, so that count has no such bound).
    for summary in summaries:
        window = scenario.windows.get(summary["timestamp_start"])
        assert summary["interval_messages_consumed"] <= (window.messages if window else 0)


def restart_broker_mid_stream(
    tmp_path: Path, grace_seconds: str
) -> tuple[list[dict[str, Any]], Scenario, str]:
    """Live input through one clean restart of the only broker, right after the processor has
    shown progress; returns the summaries once every event is counted, and the processor's log."""
    with LocalBroker(port=free_port(), root=tmp_path / "kafka") as broker:
        bootstrap = broker.bootstrap_servers
        topics = Topics(bootstrap, "user-login", "user-login-processed", "user-login-dlq", "g")
        create_topics(topics)
        scenario = Scenario(rng=random.Random(6), first_window=0, window_seconds=WINDOW_SECONDS)
        events = EVENTS // 2
        producer = RealTimeProducer(
            bootstrap, topics.input, scenario, events, EVENTS_PER_SECOND, GARBAGE_RATE
        )
        state, log = tmp_path / "state", tmp_path / "processor.log"
        settings = SETTINGS | {"WINDOW_GRACE_SECONDS": grace_seconds}

        with summary_reader(topics) as reader:
            with running_processor(topics, state, log, **settings) as processor:
                producer.start()
                wait_for_progress(reader)
                broker.restart()
                producer.join()
                assert producer.failed == []
                reader.wait_until(
                    lambda summaries: bool(summaries) and counted(summaries[-1]) == events,
                    f"all {events} events counted",
                )
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
                output = processor.log()
            reader.read_to_end()
    return reader.summaries, scenario, output
