"""The settings as shipped, read from the field defaults of `login_stream.settings.Settings`.

Both contestants run with these, so the benchmark measures the defaults a user gets and never
carries its own copy of a window length or a grace period. (The baseline itself is handed them
on its command line, so that it need not import pydantic.)
"""

from __future__ import annotations

from typing import Any, Final

from login_stream.settings import Settings


def _default(name: str) -> Any:
    return Settings.model_fields[name].default


WINDOW_SECONDS: Final = int(_default("window_seconds"))
GRACE_SECONDS: Final = int(_default("window_grace_seconds"))
MAX_MESSAGE_BYTES: Final = int(_default("max_message_bytes"))
MISSING_PROBABILITY: Final = float(_default("generator_missing_probability"))

# Everything that changes what the pipeline publishes, pinned in its environment so that a
# developer's `.env` (read by the processor from the repo root) cannot skew the comparison.
PIPELINE_ENV: Final = {
    "WINDOW_SECONDS": str(WINDOW_SECONDS),
    "WINDOW_GRACE_SECONDS": str(GRACE_SECONDS),
    "MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
    "EVENT_TIME": str(_default("event_time")),
    "EMIT_EMPTY_INTERVALS": str(_default("emit_empty_intervals")),
    "PROCESSING_GUARANTEE": str(_default("processing_guarantee")),
    "COMMIT_INTERVAL_SECONDS": str(_default("commit_interval_seconds")),
    "CLOCK_TICK_SECONDS": str(_default("clock_tick_seconds")),
}
