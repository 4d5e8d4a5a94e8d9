"""One log format for every component: readable text by default, or with `LOG_FORMAT=json`
one JSON object per line for a log collector.

Quix Streams' own loggers and librdkafka's (through the `logger` of every client) go through
the same handler, so a process never mixes formats.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Final, Literal

import orjson

TEXT_FORMAT: Final = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
# librdkafka's messages, when a client is given this logger instead of writing to stderr.
LIBRDKAFKA_LOGGER: Final = logging.getLogger("librdkafka")


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
