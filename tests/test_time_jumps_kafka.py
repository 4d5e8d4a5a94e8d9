"""When time jumps, no interval is lost (real broker, real processes).

Quix's window closes every interval a record's time has passed in one step, and hands them
back in the order its store keeps them: intervals written to disk at a checkpoint come after
those touched since. A record stamped far in the future must not move time at all.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from login_stream.dead_letters import REASON_HEADER
from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.spec import UPSTREAM_FIELDS
from tests.support import (
    SUMMARY_WAIT_SECONDS,
    Processor,
    Topics,
    encode,
    fresh_topics,
    produce,
    running_processor,
    summary_reader,
    topic_reader,
)

WINDOW = 10
GRACE = 2
# No clock ticks while these tests run: only their own records move time.
NO_TICKS = {
    "EVENT_TIME": "kafka",
    "CLOCK_TICK_SECONDS": "3600",
    "WINDOW_SECONDS": str(WINDOW),
    "WINDOW_GRACE_SECONDS": str(GRACE),
}


def login(device_type: str) -> bytes:
    event: dict[str, object] = dict.fromkeys(UPSTREAM_FIELDS, "x")
    event["device_type"] = device_type
    event["timestamp"] = 1  # placed by its Kafka time here (EVENT_TIME=kafka)
    return encode(event)


def wait_until_committed(topics: Topics, partitions: int, offset: int) -> None:
    """Wait until the processors have committed every input partition past `offset`: their
    state up to there is checkpointed (flushed to disk) too."""
    consumer = Consumer({"bootstrap.servers": topics.bootstrap, "group.id": topics.consumer_group})
    wanted = [TopicPartition(topics.input, p) for p in range(partitions)]
    deadline = time.monotonic() + SUMMARY_WAIT_SECONDS
    try:
        while True:
            committed = consumer.committed(wanted, timeout=10)
            if all(tp.offset > offset for tp in committed):
                return
            assert time.monotonic() < deadline, f"offsets not committed: {committed}"
            time.sleep(0.2)  # the committed offsets are polled; nothing announces them
    finally:
        consumer.close()


def two_intervals_closing_at_once(
    topics: Topics, partitions: int, processors: list[Processor]
) -> None:
    """Per partition: a login in [0, 10 s) checkpointed; a login in [10 s, 20 s) while the
    first interval is still open (its grace runs to 12 s); then one at 25 s, which closes
    both in one step, the newer first; then one at 40 s, which closes [20 s, 30 s)."""
    now = int(time.time())
    base = now - now % WINDOW - 3600
    every = range(partitions)

    def send(*logins: tuple[int, str]) -> None:
        """Produce the logins (second in the hour, device type) to every partition at once:
        no checkpoint may fall between the two that close [0, 10 s) and [10 s, 20 s)."""
        produce(
            topics.bootstrap,
            topics.input,
            [(login(device), (base + at) * 1000) for at, device in logins for _ in every],
            partition_of=lambda index: index % partitions,
        )

    with summary_reader(topics) as reader:
        send((1, "iOS"))
        wait_until_committed(topics, partitions, 0)
        send((11, "android"), (25, "iOS"), (40, "android"))
        reader.wait_for_interval(base + 20)
        for processor in processors:
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()
    published = {s["timestamp_start"]: s for s in reader.summaries}
    for start, logins, devices, total in (
        (base, partitions, {"iOS": partitions}, partitions),
        (base + 10, partitions, {"android": partitions}, 2 * partitions),
        (base + 20, partitions, {"iOS": partitions}, 3 * partitions),
    ):
        assert start in published, f"interval {start} never published: {reader.summaries}"
        summary = published[start]
        assert summary["interval_messages_consumed"] == logins, reader.summaries
        assert summary["interval_device_type_count"] == devices, reader.summaries
        assert summary["total_messages_consumed"] == total, reader.summaries
        assert summary["interval_late_message_count"] == 0
    assert len(published) == len(reader.summaries), "an interval was published twice"


def test_two_intervals_closed_at_once_after_a_checkpoint_are_both_counted(
    topics: Topics, tmp_path: Path
) -> None:
    with running_processor(topics, tmp_path / "state", tmp_path / "p.log", **NO_TICKS) as one:
        two_intervals_closing_at_once(topics, 1, [one])


def test_on_three_partitions_and_two_instances_too(kafka_bootstrap: str, tmp_path: Path) -> None:
    topics = fresh_topics(kafka_bootstrap, input_partitions=3)
    processors = [
        Processor(
            topics,
            tmp_path / f"state-{name}",
            tmp_path / f"{name}.log",
            PROCESSOR_INSTANCE_ID=name,
            **NO_TICKS,
        )
        for name in ("a", "b")
    ]
    try:
        two_intervals_closing_at_once(topics, 3, processors)
    finally:
        for processor in processors:
            processor.stop(signal.SIGKILL)


def test_a_record_stamped_an_hour_ahead_moves_nothing(topics: Topics, tmp_path: Path) -> None:
    """Live events, and among them one from a producer whose clock is an hour ahead (its
    Kafka timestamp and its own): every other event is counted in its own interval, the
    summaries keep coming on time, and the one record is invalid, dead-lettered as
    `future`."""
    window, grace = 2, 1
    scenario = Scenario(rng=random.Random(17), first_window=0, window_seconds=window)
    settings = {"WINDOW_SECONDS": str(window), "WINDOW_GRACE_SECONDS": str(grace)}
    with summary_reader(topics) as reader, topic_reader(topics.bootstrap, topics.dlq) as dlq:
        with running_processor(topics, tmp_path / "s", tmp_path / "p.log", **settings) as one:
            one.wait_until_ready()
            before = RealTimeProducer(topics.bootstrap, topics.input, scenario, 20, 5)
            before.start()
            before.join()
            ahead = time.time() + 3600
            event: dict[str, object] = dict.fromkeys(UPSTREAM_FIELDS, "x")
            event["timestamp"] = int(ahead)
            future_value = encode(event)
            produce(topics.bootstrap, topics.input, [(future_value, int(ahead * 1000))])
            future_at = time.time()
            after = RealTimeProducer(topics.bootstrap, topics.input, scenario, 20, 5)
            after.start()
            after.join()
            last_start = max(scenario.windows)
            reader.wait_for_interval(last_start)
            dlq.wait_for(1)
            assert one.stop(signal.SIGTERM) == 0, one.log()
            log = one.log()
        reader.read_to_end()
        dlq.read_to_end()

    summaries = reader.summaries
    # On time: each interval of the live events came within its grace and a few seconds.
    for summary, arrival in zip(summaries, reader.arrivals, strict=True):
        assert summary["timestamp_end"] <= time.time()
        if summary["timestamp_start"] == last_start:
            assert arrival - summary["timestamp_end"] < grace + 5
    # Every other event in its own interval; the one record invalid, near when it came.
    invalid = [s for s in summaries if s["interval_invalid_message_count"]]
    assert len(invalid) == 1 and invalid[0]["interval_invalid_message_count"] == 1
    assert abs(invalid[0]["timestamp_start"] - future_at) <= 2 * window
    invalid_at = invalid[0]["timestamp_start"]
    scenario.window((invalid_at - scenario.first_window) // window).invalid += 1
    assert_series(summaries, scenario.expected())
    assert [(m.value(), dict(m.headers() or [])[REASON_HEADER]) for m in dlq.messages] == [
        (future_value, b"future")
    ]
    warnings = [line for line in log.splitlines() if "FUTURE_TOLERANCE_SECONDS" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0], log
