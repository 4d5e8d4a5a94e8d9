"""The Quix Streams version the processor's internals were written for (no Kafka)."""

from __future__ import annotations

from login_stream.quix_internals import QUIX_VERSION, installed_version, version_mismatch
from tests.support import REPO


def test_the_installed_and_pinned_quix_are_the_version_the_internals_were_written_for() -> None:
    assert installed_version() == QUIX_VERSION
    assert f'"quixstreams=={QUIX_VERSION}"' in (REPO / "pyproject.toml").read_text()
    assert version_mismatch(QUIX_VERSION, accept_other=False) is None


def test_another_version_stops_start_up_with_one_line_naming_both_unless_accepted() -> None:
    refused = version_mismatch("3.29.0", accept_other=False)
    assert refused is not None
    starts, line = refused
    assert not starts
    assert "3.29.0" in line and QUIX_VERSION in line and "ACCEPT_OTHER_QUIX_VERSION" in line
    accepted = version_mismatch("3.29.0", accept_other=True)
    assert accepted is not None and accepted[0]
