"""A checkpoint commit that does not return (here: the broker frozen with SIGSTOP while the
processor drains a backlog, so the next commit's flush and offsets wait on a broker that never
answers) ends the processor after COMMIT_STALL_SECONDS with one line naming the cause and exit
code 1, as an orchestrator needs to restart it; restarted, the series goes on exactly."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from devtools.local_broker import LocalBroker, free_port
from tests.scenario import assert_series, new_scenario
from tests.support import fresh_topics, produce, running_processor, summary_reader

pytestmark = pytest.mark.bounces

STALL_SECONDS = 8
# Enough that the processor is still draining them, records fetched ahead in its queue, when
# the broker freezes: the commit of what it processes then is the one that waits.
WINDOWS = 40
EVENTS_PER_WINDOW = 1000
STUCK = "a checkpoint commit has not returned"


def test_a_stuck_commit_ends_the_processor_with_one_line_and_a_restart_goes_on_exactly(
    tmp_path: Path,
) -> None:
    scenario = new_scenario(seed=31)
    for index in range(WINDOWS):
        scenario.add_window_events(index, count=EVENTS_PER_WINDOW)
    expected = scenario.expected()
    state, log = tmp_path / "state", tmp_path / "processor.log"
    settings = {"COMMIT_STALL_SECONDS": str(STALL_SECONDS)}
    with LocalBroker(port=free_port(), root=tmp_path / "kafka") as broker:
        topics = fresh_topics(broker.bootstrap_servers)
        produce(topics.bootstrap, topics.input, scenario.messages)
        with summary_reader(topics) as reader:
            with running_processor(topics, state, log, **settings) as processor:
                processor.wait_until_ready()
                broker.freeze()
                try:
                    code = processor.wait_for_exit(timeout=STALL_SECONDS + 30)
                finally:
                    broker.thaw()
                assert code == 1, processor.log()
                output = processor.log()
            errors = [line for line in output.splitlines() if " ERROR " in line]
            assert len(errors) == 1, output
            assert STUCK in errors[0]
            assert f"COMMIT_STALL_SECONDS={STALL_SECONDS}" in errors[0]
            assert "waiting in quixstreams." in errors[0]  # the Quix call into the C client
            assert "Traceback" not in output

            with running_processor(topics, state, log, **settings) as processor:
                try:
                    reader.wait_for_interval(expected[-1]["timestamp_start"])
                except AssertionError as late:
                    raise AssertionError(f"{late}\n{processor.log()}") from None
                assert processor.stop(signal.SIGTERM) == 0, processor.log()
            reader.read_to_end()
        assert_series(reader.summaries, expected)
