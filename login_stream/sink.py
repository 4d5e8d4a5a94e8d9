"""The summary sink: `python -m login_stream.sink` reads the published summaries and writes one
row per interval into PostgreSQL with Quix Streams' own `PostgreSQLSink`.

The summary topic is exactly-once; a sink is at-least-once (a restart may write a batch
again), and the upsert on the interval's start makes a second write harmless. The processor
never waits on the database: the sink is a process of its own with a consumer group of its
own, so a database outage only delays rows. While the database cannot be reached the sink
holds its place in the topic (Quix's backpressure: nothing is committed, the batch is read
again), logs one WARNING per retry, and writes the held-back rows once it is back. A refused
login or a table of another shape is not cured by waiting: one line, exit 1.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Final

import psycopg2
from quixstreams import Application
from quixstreams.sinks import SinkBackpressureError, SinkBatch
from quixstreams.sinks.community.postgresql import PostgreSQLSink, PostgreSQLSinkException

from .application import stop_without_traceback
from .connection import connection_config
from .error_reports import ErrorReports
from .failures import causes_of, describe_failure
from .logs import configure_logging
from .quix_internals import BACKPRESSURE_LINE_TEXT, POSTGRES_REFUSAL_TEXTS
from .settings import ConfigError, Settings, load_settings
from .summary_table import KEY, TableShapeError, database, described, prepare
from .topics import created_with

logger = logging.getLogger("login_stream.sink")

EXIT_OK: Final = 0
EXIT_RUNTIME_ERROR: Final = 1
EXIT_CONFIG_ERROR: Final = 2
CONNECTION_ERRORS: Final = (psycopg2.OperationalError, psycopg2.InterfaceError)


class DatabaseRefused(Exception):
    """The server answered and refused the sink's login or database; the message says which
    setting to check."""


class SummarySink(PostgreSQLSink):
    """Quix's PostgreSQL sink, upserting on the interval's start into a table it prepares
    itself, and waiting out an unreachable database instead of failing."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            **database(settings),
            table_name=settings.postgres_table,
            # The table's shape is ours (`summary_table`), not guessed from the first row.
            schema_auto_update=False,
            connection_timeout_seconds=settings.postgres_connect_timeout_seconds,
            primary_key_columns=KEY,
            upsert_on_primary_key=True,
            include_metadata=False,
            # The failure is the sink's one line to log (see `main`), not Quix's as well.
            on_client_connect_failure=_reraise,
        )
        self._table = settings.postgres_table
        self._retry_seconds = settings.postgres_retry_seconds
        self._where = described(settings)
        self._unreachable_since: float | None = None

    def setup(self) -> None:
        # Called once at start: an unreachable database is waited for at the first write.
        try:
            self._connect()
        except CONNECTION_ERRORS as error:
            self._report_unreachable(error)

    def write(self, batch: SinkBatch) -> None:
        if self._client is None or self._client.closed:
            try:
                self._connect()
            except CONNECTION_ERRORS as error:
                self._report_unreachable(error)
                raise SinkBackpressureError(retry_after=self._retry_seconds) from None
        try:
            super().write(batch)
        except (PostgreSQLSinkException, psycopg2.Error) as error:
            lost = self._client is None or self._client.closed
            if not lost and not any(isinstance(c, CONNECTION_ERRORS) for c in causes_of(error)):
                raise
            self._report_unreachable(error)
            self._client = None
            raise SinkBackpressureError(retry_after=self._retry_seconds) from None

    def _connect(self) -> None:
        try:
            connection = psycopg2.connect(**self._client_settings)
        except psycopg2.OperationalError as error:
            refusal = next((t for t in POSTGRES_REFUSAL_TEXTS if t in str(error)), None)
            if refusal is not None:
                raise DatabaseRefused(
                    f"{self._where} refused the sink ({str(error).strip().splitlines()[-1]}); "
                    "check POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DATABASE"
                ) from None
            raise
        try:
            prepare(connection, self._table)
        except BaseException:
            connection.close()
            raise
        self._client = connection
        if self._unreachable_since is not None:
            logger.info(
                "%s answers again after %.0f s; writing the summaries held back",
                self._where,
                time.monotonic() - self._unreachable_since,
            )
            self._unreachable_since = None
        else:
            logger.info("writing summaries into the table %s of %s", self._table, self._where)

    def _report_unreachable(self, error: BaseException) -> None:
        if self._unreachable_since is None:
            self._unreachable_since = time.monotonic()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        logger.warning(
            "%s cannot be reached (%s); the summaries wait in Kafka, next try in %.0f s",
            self._where,
            reason,
            self._retry_seconds,
        )


def _reraise(error: Exception | None) -> None:
    if error is not None:
        raise error


class _QuixBackpressureLines(logging.Filter):
    """Quix logs its own line for every backpressure; the sink's line already names the cause
    and the retry, so one line per retry is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(BACKPRESSURE_LINE_TEXT)


def build_sink_application(settings: Settings) -> Application:
    app = Application(
        broker_address=connection_config(settings),
        consumer_group=settings.postgres_consumer_group_name,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        commit_interval=settings.commit_interval_seconds,
        loglevel=None,
        on_consumer_error=stop_without_traceback,
        on_processing_error=stop_without_traceback,
        on_producer_error=stop_without_traceback,
    )
    # The processor makes the summary topic; a sink started first makes it the same way.
    summaries = app.topic(
        settings.output_topic, value_deserializer="json", config=created_with(settings, 1)
    )
    app.dataframe(summaries).sink(SummarySink(settings))
    return app


def fatal_line(error: BaseException, settings: Settings) -> str:
    for cause in causes_of(error):
        if isinstance(cause, DatabaseRefused | TableShapeError):
            return str(cause)
    for cause in causes_of(error):
        if isinstance(cause, PostgreSQLSinkException | psycopg2.Error):
            return f"the table {settings.postgres_table} refused a row: {cause}"
    return describe_failure(error, settings)


def main(argv: list[str] | None = None) -> int:
    del argv
    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"sink: {error}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    configure_logging(settings.log_level, settings.log_format)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuixBackpressureLines())
    if not settings.postgres_host:
        logger.info("the summary table is off: POSTGRES_HOST is not set")
        return EXIT_OK
    reports = ErrorReports(settings)
    try:
        build_sink_application(settings).run()
    except Exception as error:
        line = fatal_line(error, settings)
        logger.error("%s", line)
        reports.fatal(line)
        return EXIT_RUNTIME_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
