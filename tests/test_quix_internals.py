"""The Quix Streams version the processor's internals were written for (no Kafka)."""

from __future__ import annotations

import inspect
import re

from quixstreams.checkpointing import checkpoint

from login_stream.application import PRODUCER_IDLE_CONNECTION_MS, build_application
from login_stream.quix_internals import (
    BACKPRESSURE_LINE_TEXT,
    QUIX_VERSION,
    installed_version,
    producer_config,
    version_mismatch,
)
from login_stream.settings import load_settings
from login_stream.shutdown import StopDeadline
from tests.support import REPO


def test_the_installed_and_pinned_quix_are_the_version_the_internals_were_written_for() -> None:
    assert installed_version() == QUIX_VERSION
    pinned = re.search(
        r'"quixstreams(\[[a-z,]+\])?==([^"]+)"', (REPO / "pyproject.toml").read_text()
    )
    assert pinned is not None
    assert pinned.group(2) == QUIX_VERSION
    assert version_mismatch(QUIX_VERSION, accept_other=False) is None


def test_another_version_stops_start_up_with_one_line_naming_both_unless_accepted() -> None:
    refused = version_mismatch("3.29.0", accept_other=False)
    assert refused is not None
    starts, line = refused
    assert not starts
    assert "3.29.0" in line and QUIX_VERSION in line and "ACCEPT_OTHER_QUIX_VERSION" in line
    accepted = version_mismatch("3.29.0", accept_other=True)
    assert accepted is not None and accepted[0]


def test_the_backpressure_line_the_sink_replaces_is_worded_as_quix_logs_it() -> None:
    source = inspect.getsource(checkpoint)
    assert f"f'{BACKPRESSURE_LINE_TEXT} " in source


def test_the_exactly_once_producer_is_idempotent_with_the_instances_transactional_id() -> None:
    """What exactly-once rests on, as Quix configures librdkafka: idempotence on (librdkafka
    then requires acks=all and retries without limit), the instance's stable transactional id,
    and none of acks, retries or the transaction timeout weakened, so librdkafka's defaults
    hold (transaction.timeout.ms 60 s, to which it lowers message.timeout.ms)."""
    settings = load_settings(consumer_group="group-a", processor_instance_id="2")
    deadline = StopDeadline(1.0, 1.0, str)
    config = producer_config(build_application(settings, deadline))
    assert config["enable.idempotence"] is True
    assert config["transactional.id"] == "group-a-2"
    # Idle connections closed: what lets a coordinator lookup stuck in librdkafka go on.
    assert config["connections.max.idle.ms"] == PRODUCER_IDLE_CONNECTION_MS
    weakened = {"acks", "request.required.acks", "retries", "transaction.timeout.ms"}
    assert weakened.isdisjoint(config), config
    assert settings.processing_guarantee == "exactly-once"
