"""The pipeline's own clock: ticks that close intervals on time when input goes quiet.

Quix Streams closes a window only when a later record arrives for the same key, so on its own
the last interval would never be published once `user-login` stops. A background thread of
the processor therefore writes a tiny tick record to every partition of an internal clock
topic every `CLOCK_TICK_SECONDS`. The dataframe of that topic is concatenated with the event
dataframe, so ticks go through the same re-key and window as events: a tick carries the wall
clock as its Kafka timestamp, advances the window's time, creates the current interval (so
intervals with no events are published too), and counts as nothing.

Nothing is ever written to `user-login`. With several processor instances each one ticks all
partitions of the clock topic; duplicate ticks are harmless because a tick only says "it is now
at least this late". Quix reads concatenated topics aligned by Kafka timestamp, so a backlog of
older events is processed before the newer ticks that would otherwise make it late.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, Producer

logger = logging.getLogger(__name__)

TICK_VALUE: Final = orjson.dumps({"kind": "tick"})
FLUSH_SECONDS: Final = 5.0


class Ticker:
    """Writes one tick per clock-topic partition every `interval` seconds, until stopped."""

    def __init__(
        self, client: Mapping[str, Any], topic: str, partitions: int, interval: float, key: str
    ) -> None:
        self._topic = topic
        self._partitions = partitions
        self._interval = interval
        self._key = key
        self._producer = Producer({**client, "linger.ms": 0, "error_cb": _log_error})
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="login-stream-clock", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._producer.flush(FLUSH_SECONDS)

    def _run(self) -> None:
        # Event.wait doubles as the tick pacing and an immediate wake-up on stop().
        while not self._stopped.wait(self._interval):
            for partition in range(self._partitions):
                self._producer.produce(
                    self._topic, key=self._key, value=TICK_VALUE, partition=partition
                )
            self._producer.poll(0)


def _log_error(error: KafkaError) -> None:
    logger.warning("clock producer: %s", error)
