"""Intervals close on time by the wall clock, also when the input stops (real broker)."""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

from tests.scenario import RealTimeProducer, Scenario, assert_series
from tests.support import Topics, running_processor, summary_reader

WINDOW = 4
GRACE = 1
# The promise: an interval's summary is readable (committed) within grace + 3 s of its end:
# one clock tick, the first stage's commit of the partial, and the merge's commit.
ALLOWED_DELAY = GRACE + 3
QUIET_INTERVALS = 3


def test_summaries_arrive_within_grace_plus_three_seconds_also_when_input_stops(
    topics: Topics, tmp_path: Path
) -> None:
    scenario = Scenario(rng=random.Random(5), first_window=0, window_seconds=WINDOW)
    settings = {"WINDOW_SECONDS": str(WINDOW), "WINDOW_GRACE_SECONDS": str(GRACE)}
    log = tmp_path / "processor.log"
    with (
        summary_reader(topics) as reader,
        running_processor(topics, tmp_path / "state", log, **settings) as proc,
    ):
        # Joined and at the end of the empty topic, so every arrival below is read at once.
        reader.read_to_end()
        proc.wait_until_ready()
        ready_at = time.time()
        producer = RealTimeProducer(topics.bootstrap, topics.input, scenario, 200, rate=20)
        producer.start()
        reader.read_while(producer.is_alive)
        assert not producer.failed
        quiet_start = max(scenario.windows) + WINDOW
        reader.wait_for_interval(quiet_start + (QUIET_INTERVALS - 1) * WINDOW)
        assert proc.stop(signal.SIGTERM) == 0, proc.log()

    summaries = reader.summaries
    assert_series(summaries, scenario.expected())
    delays = {
        summary["timestamp_start"]: arrival - summary["timestamp_end"]
        for summary, arrival in zip(summaries, reader.arrivals, strict=True)
        if summary["timestamp_end"] > ready_at
    }
    quiet = [start for start in delays if start >= quiet_start]
    assert len(quiet) >= QUIET_INTERVALS
    late = {start: round(delay, 2) for start, delay in delays.items() if delay > ALLOWED_DELAY}
    assert not late, f"published more than {ALLOWED_DELAY} s after the interval end: {late}"
