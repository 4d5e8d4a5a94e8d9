"""The Quix Streams version the processor's internals were written for (no Kafka)."""

from __future__ import annotations

import inspect
import re

from quixstreams.checkpointing import checkpoint

from login_stream.quix_internals import (
    BACKPRESSURE_LINE_TEXT,
    QUIX_VERSION,
    installed_version,
    version_mismatch,
)
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
