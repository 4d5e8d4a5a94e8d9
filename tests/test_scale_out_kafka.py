"""Many partitions, many processors, one exact answer (real broker, real processes).

Each input partition is counted where it is read and the per-partition partials are merged,
so the summaries must not depend on how many partitions the input has, how unevenly they
are filled, or which instances own them while they come and go.
"""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, NewPartitions

from tests.scenario import (
    GRACE_SECONDS,
    RealTimeProducer,
    Scenario,
    assert_series,
    new_scenario,
)
from tests.support import (
    Processor,
    Topics,
    fresh_topics,
    produce,
    summary_reader,
    topic_reader,
)

PARTITIONS = 4


class Fleet:
    """Processor instances of one pipeline, each with its own identity and state directory."""

    def __init__(self, topics: Topics, tmp_path: Path, **settings: str) -> None:
        self._topics = topics
        self._tmp_path = tmp_path
        tmp_path.mkdir(parents=True, exist_ok=True)
        self._settings = settings
        self.running: dict[str, Processor] = {}
        self.started: list[Processor] = []

    def start(self, name: str) -> Processor:
        processor = Processor(
            self._topics,
            self._tmp_path / f"state-{name}",
            self._tmp_path / f"{name}.log",
            PROCESSOR_INSTANCE_ID=name,
            **self._settings,
        )
        self.running[name] = processor
        self.started.append(processor)
        return processor

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int:
        return self.running.pop(name).stop(sig)

    def stop_all(self) -> None:
        for name, processor in list(self.running.items()):
            assert self.stop(name) == 0, processor.log()


@contextmanager
def fleet(topics: Topics, tmp_path: Path, names: list[str], **settings: str) -> Iterator[Fleet]:
    instances = Fleet(topics, tmp_path, **settings)
    try:
        for name in names:
            instances.start(name)
        yield instances
    finally:
        for processor in instances.started:
            processor.stop(signal.SIGKILL)


def dead_letters(messages: list[Message]) -> list[tuple[bytes, str]]:
    return sorted(
        (message.value() or b"", dict(message.headers() or [])["dlq-reason"].decode())
        for message in messages
    )


def test_one_partition_and_four_partitions_on_three_instances_give_the_same_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=11)
    rng = scenario.rng
    for index in range(6):
        scenario.add_window_events(index, count=rng.randint(80, 160), garbage_rate=0.05)
        # Out of order, within the grace period: counted in its own interval.
        scenario.add_delayed_event(scenario.watermark_ms / 1000 - GRACE_SECONDS / 2)
        if index >= 3:  # far behind every partition's time: late, under any partitioning
            assert scenario.add_delayed_event(scenario.window(index - 3).start + 1.0)
    expected = scenario.expected()
    assert sum(s["interval_late_message_count"] for s in expected) == 3

    one = fresh_topics(kafka_bootstrap)
    four = fresh_topics(kafka_bootstrap, input_partitions=PARTITIONS)
    produce(kafka_bootstrap, one.input, scenario.messages)
    produce(kafka_bootstrap, four.input, scenario.messages)

    answers: list[tuple[list[dict[str, Any]], list[tuple[bytes, str]]]] = []
    for topics, names in ((one, ["solo"]), (four, ["a", "b", "c"])):
        with (
            summary_reader(topics) as reader,
            topic_reader(kafka_bootstrap, topics.dlq) as dlq,
            fleet(topics, tmp_path / topics.input, names) as instances,
        ):
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            dlq.wait_for(len(scenario.dead_letters))
            instances.stop_all()
            reader.read_to_end()
            dlq.read_to_end()
        assert_series(reader.summaries, expected)
        answers.append((reader.summaries, dead_letters(dlq.messages)))

    (one_summaries, one_dlq), (four_summaries, four_dlq) = answers
    first = expected[0]["timestamp_start"]
    assert [s for s in one_summaries if s["timestamp_start"] >= first][: len(expected)] == [
        s for s in four_summaries if s["timestamp_start"] >= first
    ][: len(expected)]
    assert one_dlq == four_dlq
    wanted = sorted((raw or b"", why) for raw, why, _ in scenario.dead_letters)
    assert [value for value, _ in one_dlq] == [value for value, _ in wanted]
    assert all(got.startswith(why) for (_, got), (_, why) in zip(one_dlq, wanted, strict=True))


def test_an_uneven_backlog_caught_up_is_exact_with_nothing_late(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Minutes of backlog, most of it in one partition: that partition trails the others
    while it is caught up, and none of its events may count as late for it."""
    scenario = new_scenario(seed=12)
    for index in range(30):  # five minutes of 10-second intervals
        scenario.add_window_events(index, count=scenario.rng.randint(150, 250))
    expected = scenario.expected()
    topics = fresh_topics(kafka_bootstrap, input_partitions=PARTITIONS)
    rng = random.Random(13)
    # Partition 0 holds about 85% of the events, the other three share the rest.
    produce(
        kafka_bootstrap,
        topics.input,
        scenario.messages,
        partition_of=lambda _: 0 if rng.random() < 0.85 else rng.randint(1, PARTITIONS - 1),
    )

    with (
        summary_reader(topics) as reader,
        fleet(topics, tmp_path, ["a", "b"]) as instances,
    ):
        reader.wait_for_interval(expected[-1]["timestamp_start"])
        instances.stop_all()
        reader.read_to_end()

    assert_series(reader.summaries, expected)
    assert all(s["interval_late_message_count"] == 0 for s in reader.summaries)


def test_instances_leaving_joining_and_killed_lose_and_duplicate_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    window = 2
    settings = {
        "WINDOW_SECONDS": str(window),
        "WINDOW_GRACE_SECONDS": "2",
        # The partitions of an instance that is gone wait this long for another instance.
        "CONSUMER_SESSION_TIMEOUT_SECONDS": "6",
    }
    topics = fresh_topics(kafka_bootstrap, input_partitions=PARTITIONS)
    scenario = Scenario(rng=random.Random(14), first_window=0, window_seconds=window)
    producer = RealTimeProducer(topics.bootstrap, topics.input, scenario, 9_000, 300, 0.02)

    with (
        summary_reader(topics) as reader,
        fleet(topics, tmp_path, ["a", "b"], **settings) as instances,
    ):
        for processor in instances.running.values():
            processor.wait_until_ready()
        producer.start()
        reader.wait_for(len(reader.messages) + 2)
        # One instance leaves and another joins while events keep coming.
        assert instances.stop("a") == 0
        instances.start("c")
        reader.wait_for(len(reader.messages) + 2)
        # One is killed in the middle of its work and restarted under its own identity.
        instances.stop("b", signal.SIGKILL)
        instances.start("b")
        producer.join()
        assert producer.failed == []
        reader.wait_for_interval(max(scenario.windows))
        instances.stop_all()
        reader.read_to_end()

    assert sum(w.messages + w.invalid for w in scenario.windows.values()) == 9_000
    assert_series(reader.summaries, scenario.expected())


def test_partitions_added_under_a_pipeline_are_refused_with_one_line(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    topics = fresh_topics(kafka_bootstrap, input_partitions=2)
    with summary_reader(topics) as reader, fleet(topics, tmp_path, ["a"]) as instances:
        reader.wait_for(1)
        instances.stop_all()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_partitions([NewPartitions(topics.input, 3)])[topics.input].result()

    with fleet(topics, tmp_path, ["a"]) as instances:
        assert instances.running["a"].wait_for_exit() == 1
        output = instances.running["a"].log().split("processor starting")[-1]
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    assert f"INPUT_TOPIC={topics.input} has 3 partitions" in errors[0]
    assert "CONSUMER_GROUP" in errors[0]
    assert "Traceback" not in output
