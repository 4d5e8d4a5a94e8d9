"""The data generator: upstream-shaped events, reproducible with a seed (no Kafka), and
`python -m login_stream.generator` as a user runs it (its own process: it installs signal
handlers) against the real broker."""

from __future__ import annotations

import ipaddress
import math
import random
import subprocess
import sys
import uuid

import orjson
import pytest

from login_stream.generator import US_STATES, make_event
from tests.spec import UPSTREAM_FIELDS
from tests.support import Topics, topic_reader

NOW = 1730392658


def test_same_seed_same_events() -> None:
    first = [make_event(random.Random(42), NOW, 0.05) for _ in range(3)]
    second = [make_event(random.Random(42), NOW, 0.05) for _ in range(3)]
    assert first == second


def test_events_have_the_upstream_shape() -> None:
    rng = random.Random(1)
    for _ in range(200):
        event = make_event(rng, NOW, 0.0)
        assert list(event) == [f for f in UPSTREAM_FIELDS]
        uuid.UUID(event["user_id"])
        uuid.UUID(event["device_id"])
        ipaddress.IPv4Address(event["ip"])
        assert event["locale"] in US_STATES
        assert event["device_type"] in {"android", "iOS"}
        assert event["timestamp"] == NOW


def test_device_type_is_left_out_at_the_configured_rate() -> None:
    rng, n, p = random.Random(2), 20_000, 0.05
    missing = sum("device_type" not in make_event(rng, NOW, p) for _ in range(n))
    assert abs(missing - n * p) < 5 * math.sqrt(n * p * (1 - p))
    assert all("device_type" in make_event(rng, NOW, 0.0) for _ in range(500))
    assert all("device_type" not in make_event(rng, NOW, 1.0) for _ in range(500))


@pytest.mark.parametrize(
    "flags", [["--rate", "0"], ["--count", "-1"], ["--missing-probability", "2"]]
)
def test_bad_flags_exit_with_code_2(flags: list[str]) -> None:
    result = run_generator(flags)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_generator_produces_the_requested_count(topics: Topics) -> None:
    count = 25
    argv = ["--bootstrap-servers", topics.bootstrap, "--topic", topics.input]
    result = run_generator([*argv, "--count", str(count), "--rate", "500", "--seed", "7"])
    assert result.returncode == 0, result.stderr
    with topic_reader(topics.bootstrap, topics.input) as reader:
        reader.wait_for(count)
        reader.read_to_end()
    assert len(reader.messages) == count
    events = [orjson.loads(message.value()) for message in reader.messages]
    assert all(set(event) <= set(UPSTREAM_FIELDS) for event in events)


def run_generator(flags: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "login_stream.generator", *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )
