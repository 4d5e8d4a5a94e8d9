"""Bad input never stops the processor and never disappears (real broker)."""

from __future__ import annotations

import signal
from pathlib import Path

from login_stream.dead_letters import (
    OFFSET_HEADER,
    PARTITION_HEADER,
    REASON_HEADER,
    TOPIC_HEADER,
)
from tests.scenario import (
    GRACE_SECONDS,
    WINDOW_SECONDS,
    assert_series,
    counted_in_interval,
    new_scenario,
)
from tests.support import Topics, produce, running_processor, summary_reader, topic_reader


def test_invalid_and_late_messages_are_counted_and_dead_lettered(
    topics: Topics, tmp_path: Path
) -> None:
    scenario = new_scenario(seed=3)
    late = 0
    for index in range(5):
        start = scenario.window(index).start
        if index >= 2:
            # Time is 0.3 s into this interval: one from the previous interval is within the
            # grace period and counted there; one from two intervals back is late.
            scenario.add_message_at(start + 0.3)
            assert not scenario.add_delayed_event(start - 0.5)
            assert scenario.add_delayed_event(start - 15)
            late += 1
        scenario.add_window_events(index, count=scenario.rng.randint(20, 40), garbage_rate=0.3)
        if index == 1:
            # A device clock decades ahead must neither jump the intervals nor stop them.
            scenario.add_event_from_a_clock_ahead(start + 9.5, ahead_seconds=10**9)
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected(up_to_window=5)

    with summary_reader(topics) as reader, topic_reader(topics.bootstrap, topics.dlq) as dlq:
        with running_processor(
            topics,
            tmp_path / "state",
            tmp_path / "p.log",
            WINDOW_SECONDS=str(WINDOW_SECONDS),
            WINDOW_GRACE_SECONDS=str(GRACE_SECONDS),
        ) as processor:
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            dlq.wait_for(len(scenario.dead_letters))
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
        reader.read_to_end()
        summaries = reader.summaries
        dlq.read_to_end()

    assert_series(summaries, expected)
    # Every message is accounted for: counted as a login, invalid or late, nothing else.
    assert sum(counted_in_interval(s) for s in summaries) == len(scenario.messages)
    assert summaries[-1]["total_late_message_count"] == late

    with topic_reader(topics.bootstrap, topics.input) as source:
        source.read_to_end()
    keys = {message.offset(): message.key() for message in source.messages}
    timestamps = {message.offset(): message.timestamp()[1] for message in source.messages}

    assert [m.value() for m in dlq.messages] == [raw for raw, _, _ in scenario.dead_letters]
    assert [m.key() for m in dlq.messages] == [
        keys[offset] for _, _, offset in scenario.dead_letters
    ]
    # A dead letter keeps its message's Kafka timestamp, even one re-placed as late.
    assert [m.timestamp()[1] for m in dlq.messages] == [
        timestamps[offset] for _, _, offset in scenario.dead_letters
    ]
    for message, (_, reason, offset) in zip(dlq.messages, scenario.dead_letters, strict=True):
        headers = dict(message.headers() or [])
        assert headers[REASON_HEADER].decode().startswith(reason)
        assert headers[TOPIC_HEADER].decode() == topics.input
        assert headers[PARTITION_HEADER] == b"0"
        assert headers[OFFSET_HEADER] == str(offset).encode()
