"""Liveness and readiness rules, and the HTTP endpoints that serve them (no Kafka)."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from devtools.local_broker import free_port
from login_stream.health import HealthServer, Progress, main
from login_stream.metrics import Metrics

STALE = 30.0


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_a_starting_processor_is_live_but_not_ready(clock: FakeClock) -> None:
    progress = Progress(STALE, clock)
    clock.now += STALE + 1
    assert progress.live() == (True, "live")
    assert progress.ready() == (False, "not ready: no record processed yet")


def test_records_flowing_make_it_ready(clock: FakeClock) -> None:
    progress = Progress(STALE, clock)
    clock.now += 5
    progress.record_processed("user-login", 0, 1)
    clock.now += STALE - 1
    assert progress.ready() == (True, "ready")


def test_no_record_past_the_bound_is_not_ready_but_still_live(clock: FakeClock) -> None:
    # A broker outage or a standby instance without partitions: no restart would help.
    progress = Progress(STALE, clock)
    progress.record_processed("user-login", 0, 1)
    clock.now += STALE + 1
    assert progress.ready() == (False, f"not ready: no record processed for {STALE + 1:.0f} s")
    assert progress.live() == (True, "live")


def test_a_stopped_processing_thread_is_not_live(clock: FakeClock) -> None:
    finished = threading.Thread(target=lambda: None)
    finished.start()
    finished.join()
    progress = Progress(STALE, clock, processing_thread=finished)
    assert progress.live() == (False, "processing thread stopped")


@pytest.fixture
def served(clock: FakeClock) -> Iterator[tuple[Progress, int]]:
    progress = Progress(STALE, clock)
    server = HealthServer(progress, "127.0.0.1", 0, Metrics())
    server.start()
    try:
        yield progress, server.port
    finally:
        server.stop()


def status(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_endpoints_answer_with_the_probe_status(served: tuple[Progress, int]) -> None:
    progress, port = served
    assert status(port, "/live") == (200, "live")
    assert status(port, "/ready") == (503, "not ready: no record processed yet")
    progress.record_processed("user-login", 0, 1)
    assert status(port, "/ready") == (200, "ready")
    assert status(port, "/nothing")[0] == 404


def test_the_ready_metric_is_what_the_ready_endpoint_answers(
    served: tuple[Progress, int], clock: FakeClock
) -> None:
    progress, port = served

    def scraped_ready() -> str:
        _, text = status(port, "/metrics")
        return next(line for line in text.splitlines() if line.startswith("login_stream_ready "))

    assert status(port, "/ready")[0] == 503
    assert scraped_ready() == "login_stream_ready 0.0"
    progress.record_processed("user-login", 0, 1)
    assert status(port, "/ready")[0] == 200
    assert scraped_ready() == "login_stream_ready 1.0"
    clock.now += STALE + 1
    assert status(port, "/ready")[0] == 503
    assert scraped_ready() == "login_stream_ready 0.0"


def test_probe_command_exits_zero_only_when_the_check_passes(
    served: tuple[Progress, int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    progress, port = served
    monkeypatch.setenv("HEALTH_PORT", str(port))
    assert main(["ready"]) == 1
    progress.record_processed("user-login", 0, 1)
    assert main(["ready"]) == 0
    assert capsys.readouterr().out.splitlines() == ["not ready: no record processed yet", "ready"]


def test_probe_command_fails_cleanly_when_nothing_listens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HEALTH_PORT", str(free_port()))
    assert main(["live"]) == 1
    assert "no answer on port" in capsys.readouterr().out
