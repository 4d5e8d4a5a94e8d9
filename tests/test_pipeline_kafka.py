"""The processor end to end on a real broker: known events in, exact summaries out."""

from __future__ import annotations

import random
import signal
import uuid
from pathlib import Path

import orjson
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.scenario import RealTimeProducer, Scenario, assert_series, new_scenario
from tests.support import (
    Topics,
    create_topic,
    encode,
    produce,
    running_processor,
    summary_reader,
)

# Events produced live, stamped with the wall clock, in short intervals to keep tests quick.
REAL_TIME_WINDOW = 2
REAL_TIME = {"WINDOW_SECONDS": str(REAL_TIME_WINDOW), "WINDOW_GRACE_SECONDS": "2"}
TWO_HOURS = 2 * 3600


def test_every_interval_is_summarised_exactly(
    topics: Topics, state_dir: Path, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=1)
    for index in (0, 1, 3, 4, 5):  # nothing in window 2: it must be published all the same
        scenario.add_window_events(index, count=scenario.rng.randint(5, 40))
    scenario.window(2)
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected(up_to_window=6)

    with summary_reader(topics) as reader:
        with running_processor(topics, state_dir, tmp_path / "processor.log") as processor:
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()
        summaries = reader.summaries

    assert_series(summaries, expected)


def test_totals_continue_after_a_restart_with_an_empty_state_dir(
    topics: Topics, tmp_path: Path
) -> None:
    scenario = Scenario(rng=random.Random(2), first_window=0, window_seconds=REAL_TIME_WINDOW)
    log = tmp_path / "processor.log"
    with summary_reader(topics) as reader:
        with running_processor(topics, tmp_path / "first", log, **REAL_TIME) as processor:
            first = RealTimeProducer(topics.bootstrap, topics.input, scenario, 3000, 500)
            first.start()
            first.join()
            reader.wait_for_interval(max(scenario.windows))
            assert processor.stop(signal.SIGTERM) == 0, processor.log()

        # A fresh state dir, as a new container without its volume: totals come back
        # from the changelog topic, not from local files.
        with running_processor(topics, tmp_path / "second", log, **REAL_TIME) as processor:
            second = RealTimeProducer(topics.bootstrap, topics.input, scenario, 3000, 500)
            second.start()
            second.join()
            reader.wait_for_interval(max(scenario.windows))
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()

    assert_series(reader.summaries, scenario.expected())


def test_kafka_record_time_places_events_when_chosen(
    topics: Topics, state_dir: Path, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=4)
    for index in range(3):
        scenario.add_window_events(index, count=scenario.rng.randint(10, 30))
    # Every event claims to have happened two hours before it was produced: with
    # EVENT_TIME=kafka that must not move it out of the interval of its Kafka timestamp.
    produce(
        topics.bootstrap,
        topics.input,
        [(shift_event_time(value, -TWO_HOURS), ts) for value, ts in scenario.messages],
    )
    expected = scenario.expected()

    with summary_reader(topics) as reader:
        log = tmp_path / "processor.log"
        with running_processor(topics, state_dir, log, EVENT_TIME="kafka") as processor:
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()

    assert_series(reader.summaries, expected)


def shift_event_time(value: bytes | None, seconds: int) -> bytes | None:
    """The same event with its `timestamp` field (either upstream form) moved by `seconds`."""
    assert value is not None
    event = orjson.loads(value)
    stamp = event.get("timestamp")
    if isinstance(stamp, int):
        event["timestamp"] = stamp + seconds
    elif isinstance(stamp, str) and stamp.strip():
        event["timestamp"] = str(int(stamp) + seconds)
    return encode(event)


def test_a_replication_factor_beyond_the_brokers_stops_start_up_with_one_line(
    topics: Topics, tmp_path: Path
) -> None:
    """TOPIC_REPLICATION_FACTOR reaches the topics the pipeline creates: two replicas cannot
    be placed on the one test broker, and the user is told what to check."""
    with running_processor(
        topics,
        tmp_path / "state",
        tmp_path / "processor.log",
        INPUT_TOPIC=f"{topics.input}-new",
        TOPIC_REPLICATION_FACTOR="2",
    ) as processor:
        assert processor.wait_for_exit() == 1
        output = processor.log()
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    assert "TOPIC_REPLICATION_FACTOR=2" in errors[0]
    assert "Traceback" not in output


def test_a_new_pipeline_makes_its_topics_with_the_partitions_each_needs(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """On three input partitions: a clock partition per input partition, the partials one
    more (the merge reads the last), one for the summaries and one for the dead letters; the
    changelogs of both stages compacted, one partition per partition of what they follow."""
    suffix = uuid.uuid4().hex[:10]
    topics = Topics(
        kafka_bootstrap, f"in-{suffix}", f"out-{suffix}", f"dlq-{suffix}", f"g-{suffix}"
    )
    create_topic(kafka_bootstrap, topics.input, partitions=3)
    with running_processor(topics, tmp_path / "state", tmp_path / "processor.log") as processor:
        processor.wait_until_ready()
        assert processor.stop(signal.SIGTERM) == 0, processor.log()
    made = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=30).topics
    partitions = {name: len(made[name].partitions) for name in made if suffix in name}
    assert {
        name: count for name, count in partitions.items() if not name.startswith("changelog__")
    } == {
        topics.input: 3,
        f"{topics.consumer_group}-clock": 3,
        f"{topics.consumer_group}-partials": 4,
        topics.output: 1,
        topics.dlq: 1,
    }
    changelogs = {
        name: count for name, count in partitions.items() if name.startswith("changelog__")
    }
    assert sorted(changelogs.values()) == [3, 4], changelogs
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    described = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, name) for name in changelogs]
    )
    for future in described.values():
        assert future.result()["cleanup.policy"].value == "compact"
