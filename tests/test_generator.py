"""The data generator: upstream-shaped events, reproducible with a seed (no Kafka), and a
run against the real broker."""

from __future__ import annotations

import ipaddress
import math
import random
import uuid

import orjson
import pytest

from login_stream.events import EXPECTED_FIELDS
from login_stream.generator import US_STATES, main, make_event
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
        assert list(event) == [f for f in EXPECTED_FIELDS]
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
    with pytest.raises(SystemExit) as exit_:
        main(flags)
    assert exit_.value.code == 2


def test_generator_produces_the_requested_count(topics: Topics) -> None:
    count = 25
    argv = ["--bootstrap-servers", topics.bootstrap, "--topic", topics.input]
    assert main([*argv, "--count", str(count), "--rate", "500", "--seed", "7"]) == 0
    with topic_reader(topics.bootstrap, topics.input) as reader:
        reader.wait_for(count)
        reader.read_to_end()
    assert len(reader.messages) == count
    events = [orjson.loads(message.value()) for message in reader.messages]
    assert all(set(event) <= set(EXPECTED_FIELDS) for event in events)
