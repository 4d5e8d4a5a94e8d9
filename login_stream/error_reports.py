"""Fatal errors reported to Sentry: each way the processor or the generator ends on a fatal
error sends one event with the one line the log gives, flushed before the process exits.

Off unless `SENTRY_DSN` is set. Every event carries the environment (`SENTRY_ENVIRONMENT`) and
the release (`login-stream@<version>`, the package's version, which `python app.py --version`
prints). Records sent to the dead-letter topic are data, counted in the summaries and the
metrics, never reported one by one; and nothing but the fatal end is reported, so the SDK's
own integrations (which would turn every ERROR line into an event) stay off.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Final

import sentry_sdk

from .settings import Settings

VERSION: Final = version("login-stream")
RELEASE: Final = f"login-stream@{VERSION}"
FLUSH_SECONDS: Final = 5.0


class _LastError(logging.Handler):
    """The last ERROR line logged: every fatal path logs its one-line reason last."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.line: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        self.line = record.getMessage()


class ErrorReports:
    """The fatal-error reporting of one process."""

    def __init__(self, settings: Settings) -> None:
        self._last_error = _LastError()
        self.enabled = settings.sentry_dsn is not None
        if not self.enabled:
            return
        assert settings.sentry_dsn is not None
        sentry_sdk.init(
            dsn=settings.sentry_dsn.get_secret_value(),
            environment=settings.sentry_environment,
            release=RELEASE,
            default_integrations=False,
            auto_enabling_integrations=False,
        )
        logging.getLogger().addHandler(self._last_error)

    def fatal(self, reason: str | None = None) -> None:
        """Report the process's fatal end: `reason`, else the last ERROR line logged."""
        if not self.enabled:
            return
        line = reason or self._last_error.line or "ended on an error it did not name"
        sentry_sdk.capture_message(line, level="fatal")
        sentry_sdk.flush(FLUSH_SECONDS)
