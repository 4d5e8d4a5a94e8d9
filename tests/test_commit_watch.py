"""A checkpoint commit that does not return within the bound turns liveness and readiness red
and ends the processor once, with one line naming the cause; commits that return, however
many, never do (no Kafka: the watch is plain code on a clock the test moves)."""

from __future__ import annotations

import random
import threading

from login_stream.commit_watch import CommitWatch
from login_stream.health import Progress

BOUND = 60.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_commit_running_past_the_bound_is_stuck_and_named() -> None:
    clock = Clock()
    watch = CommitWatch(BOUND, on_stuck=lambda _line: None, clock=clock)
    watch.started()
    clock.now += BOUND
    assert watch.stuck_line() is None
    clock.now += 1
    line = watch.stuck_line()
    assert line is not None
    assert "checkpoint commit has not returned for 61 s" in line
    assert "COMMIT_STALL_SECONDS=60" in line
    healthy, why = watch.health()
    assert not healthy
    assert why.startswith("a checkpoint commit has not returned for 61 s")


def test_commits_that_return_are_never_stuck_whatever_their_number_and_length() -> None:
    rng = random.Random(7)
    clock = Clock()
    watch = CommitWatch(BOUND, on_stuck=lambda _line: None, clock=clock)
    for _ in range(1000):
        watch.started()
        clock.now += rng.uniform(0, BOUND)
        assert watch.stuck_line() is None
        watch.finished()
        clock.now += rng.uniform(0, 10 * BOUND)  # between commits: not a commit
        assert watch.health() == (True, "commits return")


def test_liveness_and_readiness_go_red_while_a_commit_is_stuck() -> None:
    clock = Clock()
    progress = Progress(stale_seconds=30.0, clock=clock)
    watch = CommitWatch(BOUND, on_stuck=lambda _line: None, clock=clock)
    progress.require(watch.health)
    progress.record_processed("clock", 0, 1)
    assert progress.live() == (True, "live")
    assert progress.ready() == (True, "ready")
    watch.started()
    clock.now += BOUND + 5
    live, why = progress.live()
    ready, why_not_ready = progress.ready()
    assert not live and not ready
    assert "checkpoint commit" in why and why == why_not_ready


def test_the_watch_ends_the_processor_once_when_a_commit_is_stuck() -> None:
    clock = Clock()
    calls: list[str] = []
    called = threading.Event()

    def on_stuck(line: str) -> None:
        calls.append(line)
        called.set()

    watch = CommitWatch(BOUND, on_stuck=on_stuck, clock=clock, check_seconds=0.01)
    watch.start()
    watch.started()
    clock.now += BOUND + 1
    assert called.wait(10.0)
    watch.stop()
    assert len(calls) == 1
    assert "checkpoint commit has not returned" in calls[0]


def test_the_line_names_the_call_the_commit_waits_in() -> None:
    clock = Clock()
    watch = CommitWatch(BOUND, on_stuck=lambda _line: None, clock=clock)
    waiting = threading.Event()
    release = threading.Event()

    def send_offsets_to_transaction() -> None:
        waiting.set()
        release.wait(10.0)

    def commit() -> None:
        watch.started()
        send_offsets_to_transaction()
        watch.finished()

    committer = threading.Thread(target=commit)
    committer.start()
    try:
        assert waiting.wait(10.0)
        clock.now += BOUND + 1
        line = watch.stuck_line()
    finally:
        release.set()
        committer.join()
    assert line is not None
    assert (
        "< tests.test_commit_watch.test_the_line_names_the_call_the_commit_waits_in."
        "<locals>.send_offsets_to_transaction" in line
    )


def test_a_slow_commit_is_reported_once_per_period_until_it_returns_or_the_bound() -> None:
    """Whatever the watch's checks (here every 0.5 s of the clock), one line per period of
    REPORT seconds: a commit waiting for brokers to return says so, it does not flood."""
    report = 10.0
    for length in (9.5, 10.0, 25.0, 59.5, BOUND + 5):
        clock = Clock()
        watch = CommitWatch(BOUND, on_stuck=lambda _line: None, clock=clock, report_seconds=report)
        watch.started()
        lines = []
        start = clock.now
        while clock.now - start < length:
            clock.now += 0.5
            if line := watch.waiting_line():
                lines.append(line)
        expected = int(min(length, BOUND) // report)
        assert len(lines) == expected, (length, lines)
        for period, line in enumerate(lines, start=1):
            assert line.startswith(f"a checkpoint commit has waited {period * report:.0f} s")
            assert "min.insync.replicas" in line and "COMMIT_STALL_SECONDS=60" in line
        watch.finished()
        assert watch.waiting_line() is None
        # The next commit is reported from its own start.
        watch.started()
        clock.now += report
        line = watch.waiting_line()
        assert line is not None and f"waited {report:.0f} s" in line
