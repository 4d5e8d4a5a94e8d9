"""Several input partitions read by several processor instances (real broker).

Events are produced live with random keys over three partitions while two processors share
the consumer group. Re-keyed through the repartition topic, they must make one series of
exact summaries, published once, with the invalid messages in the dead-letter topic.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import fresh_topics, running_processor, summary_reader, topic_reader

PARTITIONS = 3
WINDOW_SECONDS = 2
EVENTS = 3_000
EVENTS_PER_SECOND = 300
GARBAGE_RATE = 0.02
SETTINGS = {"WINDOW_SECONDS": str(WINDOW_SECONDS), "WINDOW_GRACE_SECONDS": "3"}


def test_two_instances_on_three_partitions_publish_one_exact_series(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = fresh_topics(kafka_bootstrap, input_partitions=PARTITIONS)
    scenario = Scenario(rng=random.Random(8), first_window=0, window_seconds=WINDOW_SECONDS)

    with (
        summary_reader(topics) as reader,
        topic_reader(kafka_bootstrap, topics.dlq) as dlq,
        running_processor(
            topics, tmp_path / "a", tmp_path / "a.log", PROCESSOR_INSTANCE_ID="a", **SETTINGS
        ) as first,
        running_processor(
            topics, tmp_path / "b", tmp_path / "b.log", PROCESSOR_INSTANCE_ID="b", **SETTINGS
        ) as second,
    ):
        # Both have joined and processed records, so the group's rebalances are behind us
        # before the first event is written.
        first.wait_until_ready()
        second.wait_until_ready()
        producer = RealTimeProducer(
            kafka_bootstrap, topics.input, scenario, EVENTS, EVENTS_PER_SECOND, GARBAGE_RATE
        )
        producer.start()
        producer.join()
        assert not producer.failed
        reader.wait_for_interval(max(scenario.windows))
        dlq.wait_for(len(scenario.dead_letters))
        assert first.stop(signal.SIGTERM) == 0, first.log()
        assert second.stop(signal.SIGTERM) == 0, second.log()
        reader.read_to_end()
        dlq.read_to_end()

    assert_series(reader.summaries, scenario.expected())
    assert sorted(m.value() or b"" for m in dlq.messages) == sorted(
        raw or b"" for raw, _, _ in scenario.dead_letters
    )
