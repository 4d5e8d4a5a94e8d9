"""Brokers gone for longer than the consumer session end the processor (exit code 1); and at
start-up, a broker that crashed moments ago is waited out (`wait_for_listed_brokers`).

librdkafka rides out a broker outage by retrying for as long as it lasts. Past the consumer
session the processor has lost its place in the group anyway, and meanwhile it looks alive
to an orchestrator: its processing thread may even sit in a producer flush that waits for the
transaction timeout. So a thread of its own asks the cluster a cheap question every few
seconds, which any broker that is up answers, and once no answer came for longer than the
session it stops the processor with `BrokersLost`, whose one log line names the address and
the setting. A shorter outage (a broker restart) is ridden out.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

logger = logging.getLogger(__name__)

PROBE_INTERVAL_SECONDS: Final = 2.0
PROBE_TIMEOUT_SECONDS: Final = 2.0
CONNECT_TIMEOUT_SECONDS: Final = 1.0


class BrokersLost(Exception):
    """No broker answered for longer than the consumer session."""

    def __init__(self, silent_seconds: float) -> None:
        super().__init__(f"no broker answered for {silent_seconds:.0f} s")
        self.silent_seconds = silent_seconds


class BrokerWatch:
    """Calls `on_lost` once, from its own thread, when the cluster has not answered for
    longer than `allowed_seconds`."""

    def __init__(
        self,
        client: Mapping[str, Any],
        topic: str,
        allowed_seconds: float,
        on_lost: Callable[[BrokersLost], None],
    ) -> None:
        # Silent: the processor's own clients already log every failed connection.
        config = {name: value for name, value in client.items() if name != "logger"}
        self._admin = AdminClient({**config, "log_level": 0})
        self._topic = topic
        self._allowed_seconds = allowed_seconds
        self._on_lost = on_lost
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="login-stream-broker-watch")
        self._thread.daemon = True

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _watch(self) -> None:
        answered_at = time.monotonic()
        while not self._stopped.wait(PROBE_INTERVAL_SECONDS):
            if self._answers():
                answered_at = time.monotonic()
                continue
            silent = time.monotonic() - answered_at
            if silent > self._allowed_seconds and not self._stopped.is_set():
                self._on_lost(BrokersLost(silent))
                return

    def _answers(self) -> bool:
        # A metadata request for one topic goes to a broker that is up, if any is; librdkafka
        # may send a cluster description to one that is down (with two brokers of three down,
        # two probes in three timed out, and the watch ended a processor that was only
        # waiting for replicas).
        try:
            self._admin.list_topics(topic=self._topic, timeout=PROBE_TIMEOUT_SECONDS)
        except KafkaException:
            return False
        return True


def wait_for_listed_brokers(client: Mapping[str, Any], timeout_seconds: float) -> None:
    """Return once every broker the cluster lists accepts a connection, or after
    `timeout_seconds` (then start-up goes on as before).

    A broker that crashed stays listed until the controllers fence it (the brokers' session,
    9 s by default). Meanwhile librdkafka may take it for the controller its admin requests
    wait for, and Quix's topic look-ups at start-up then fail after 30 s with "Failed while
    waiting for controller". One WARNING line says what is waited for."""
    config = {name: value for name, value in client.items() if name != "logger"}
    admin = AdminClient({**config, "log_level": 0})
    deadline = time.monotonic() + timeout_seconds
    warned = False
    while True:
        try:
            listed = admin.list_topics(timeout=PROBE_TIMEOUT_SECONDS).brokers.values()
        except KafkaException:
            return  # nothing answers: the start-up's own checks say so
        silent = [f"{broker.host}:{broker.port}" for broker in listed if not _accepts(broker)]
        if not silent or time.monotonic() >= deadline:
            return
        if not warned:
            logger.warning(
                "the cluster still lists broker(s) %s, which do not answer; waiting up to %.0f s "
                "for the cluster to drop them before starting",
                ", ".join(silent),
                timeout_seconds,
            )
            warned = True
        time.sleep(PROBE_INTERVAL_SECONDS)


def _accepts(broker: Any) -> bool:
    try:
        with socket.create_connection((broker.host, broker.port), CONNECT_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False
