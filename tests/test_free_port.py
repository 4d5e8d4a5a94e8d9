"""The ports the tests' brokers, processors and servers listen on (no Kafka)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devtools.local_broker import _port_block, free_port

LINUX_PORT_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PICKS = 50


def test_ports_are_free_distinct_and_below_the_range_outgoing_connections_take() -> None:
    outgoing_start = int(LINUX_PORT_RANGE.read_text().split()[0])
    ports = [free_port() for _ in range(PICKS)]
    assert len(set(ports)) == PICKS
    assert max(ports) < outgoing_start
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_something_listens_on_is_not_handed_out_again() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", free_port()))
        listener.listen()
        taken = listener.getsockname()[1]
        # Twice round the block: the taken port would have come back.
        handed_out = {free_port() for _ in range(2 * len(_port_block()))}
    assert taken not in handed_out
    assert handed_out <= set(_port_block())


def test_each_test_worker_draws_from_a_block_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = []
    for worker in ("", "gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        blocks.append(set(_port_block()))
    assert all(not first & second for i, first in enumerate(blocks) for second in blocks[i + 1 :])
