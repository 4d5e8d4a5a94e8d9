"""Brokers gone for longer than the consumer session end the processor (exit code 1).

librdkafka rides out a broker outage by retrying for as long as it lasts. Past the consumer
session the processor has lost its place in the group anyway, and meanwhile it looks alive
to an orchestrator: its processing thread may even sit in a producer flush that waits for the
transaction timeout. So a thread of its own asks the cluster a cheap question every few
seconds, and once no answer came for longer than the session it stops the processor with
`BrokersLost`, whose one log line names the address and the setting. A shorter outage (a
broker restart) is ridden out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

PROBE_INTERVAL_SECONDS: Final = 2.0
PROBE_TIMEOUT_SECONDS: Final = 2.0


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
        allowed_seconds: float,
        on_lost: Callable[[BrokersLost], None],
    ) -> None:
        # Silent: the processor's own clients already log every failed connection.
        config = {name: value for name, value in client.items() if name != "logger"}
        self._admin = AdminClient({**config, "log_level": 0})
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
        try:
            self._admin.describe_cluster(request_timeout=PROBE_TIMEOUT_SECONDS).result()
        except KafkaException:
            return False
        return True
