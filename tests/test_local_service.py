"""The local servers of the tests and the demo are stopped when their `with` block ends, and
also when their start fails part-way, so nothing they started outlives a failed test."""

from __future__ import annotations

import pytest

from devtools.local_service import LocalService


class Recorded(LocalService):
    """A service that records what is asked of it, its start failing when told to."""

    def __init__(self, start_fails: bool) -> None:
        self.start_fails = start_fails
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        if self.start_fails:
            raise RuntimeError("the second node did not answer")

    def stop(self) -> None:
        self.calls.append("stop")


def test_a_service_is_started_on_entry_and_stopped_on_exit() -> None:
    service = Recorded(start_fails=False)
    with service as entered:
        assert entered is service
        assert service.calls == ["start"]
    assert service.calls == ["start", "stop"]


def test_a_service_whose_start_fails_is_stopped_and_the_failure_raised() -> None:
    service = Recorded(start_fails=True)
    with pytest.raises(RuntimeError, match="second node"), service:
        pytest.fail("the block must not run after a failed start")
    assert service.calls == ["start", "stop"]


def test_a_service_is_stopped_when_its_block_raises() -> None:
    service = Recorded(start_fails=False)
    with pytest.raises(ValueError), service:
        raise ValueError("the test failed")
    assert service.calls == ["start", "stop"]
