"""One log format for every component: readable text by default, or with `LOG_FORMAT=json`
one JSON object per line for a log collector.

Quix Streams' own loggers and librdkafka's (through the `logger` of every client) go through
the same handler, so a process never mixes formats. While brokers are unreachable, the lines
the Kafka clients write about it pass one per `CONNECTION_LOSS_LINE_SECONDS` (see
`ConnectionLossLines`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final, Literal

import orjson

from .quix_internals import CONNECTION_LOSS_TEXTS

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
# librdkafka's messages, when a client is given this logger instead of writing to stderr.
LIBRDKAFKA_LOGGER: Final = logging.getLogger("librdkafka")

# At most one line about lost broker connections per this many seconds.
CONNECTION_LOSS_LINE_SECONDS: Final = 10.0
# The loggers of the Kafka clients; the processor's own verdicts (which may quote a Kafka
# error) always pass as they are.
KAFKA_CLIENT_LOGGERS: Final = ("librdkafka", "quixstreams.", "login_stream.clock")


def is_connection_loss(record: logging.LogRecord) -> bool:
    return record.name.startswith(KAFKA_CLIENT_LOGGERS) and any(
        text in record.getMessage() for text in CONNECTION_LOSS_TEXTS
    )


class ConnectionLossLines(logging.Filter):
    """Lets one warning or error about lost broker connections through per `every_seconds`, as
    a WARNING, with the count of those held back since the last one.

    While brokers are unreachable, every Kafka client of the processor logs each failed attempt
    to reach each broker: dozens of ERROR lines within seconds. Yet the processor rides out a
    short outage, and a long one ends it with one ERROR line naming the settings to check
    (`broker_watch`); what is left to say meanwhile is that the connection is lost, and still.
    """

    def __init__(self, every_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._every_seconds = every_seconds
        self._clock = clock
        self._next_line_at: float | None = None
        self._held_back = 0
        # librdkafka's callbacks, Quix's loop and the clock log from different threads.
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not is_connection_loss(record):
            return True
        with self._lock:
            now = self._clock()
            if self._next_line_at is not None and now < self._next_line_at:
                self._held_back += 1
                return False
            held_back, self._held_back = self._held_back, 0
            self._next_line_at = now + self._every_seconds
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        if held_back:
            record.msg = (
                f"{record.getMessage()} ({held_back} more lines about lost connections held back)"
            )
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(level: str, log_format: Literal["text", "json"]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.addFilter(ConnectionLossLines(CONNECTION_LOSS_LINE_SECONDS))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
