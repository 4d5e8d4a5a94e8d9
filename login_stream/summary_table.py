"""The summary table in PostgreSQL: its shape, made when missing and checked when present.

One row per interval, keyed by `timestamp_start`, so writing a summary twice (a replay, a
restarted sink) leaves one row: the sink upserts on that key. The summary's fields are the
columns, under their own names; the per-device and per-field counts are JSONB, and two views
give them one row per interval and device type or field, for plain SQL. The interval's bounds
are also kept as `timestamptz` (generated from the epoch seconds), indexed for time ranges.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg2 import sql
from psycopg2.extensions import connection as Connection

from .settings import Settings

# Column -> PostgreSQL type (as information_schema names it); the summary's own fields first.
SUMMARY_COLUMNS: Final = {
    "timestamp_start": "bigint",
    "timestamp_end": "bigint",
    "interval_messages_consumed": "bigint",
    "total_messages_consumed": "bigint",
    "interval_missing_field_count": "jsonb",
    "interval_device_type_count": "jsonb",
    "total_missing_field_count": "jsonb",
    "total_device_type_count": "jsonb",
    "interval_invalid_message_count": "bigint",
    "total_invalid_message_count": "bigint",
    "interval_late_message_count": "bigint",
    "total_late_message_count": "bigint",
}
TIME_COLUMNS: Final = {
    "interval_start": "timestamp with time zone",
    "interval_end": "timestamp with time zone",
}
COLUMNS: Final = {**SUMMARY_COLUMNS, **TIME_COLUMNS}
KEY: Final = "timestamp_start"

_TYPE_SQL: Final = {"bigint": "BIGINT", "jsonb": "JSONB"}


def database(settings: Settings) -> dict[str, Any]:
    """The POSTGRES_* settings as `psycopg2.connect` (and Quix's sink) take them."""
    password = settings.postgres_password
    return {
        "host": settings.postgres_host,
        "port": settings.postgres_port,
        "dbname": settings.postgres_database,
        "user": settings.postgres_user,
        "password": password.get_secret_value() if password else "",
    }


def described(settings: Settings) -> str:
    """Where the table lives, for a user's eyes (never the password)."""
    return (
        f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port} "
        f"(database {settings.postgres_database})"
    )


class TableShapeError(Exception):
    """The table exists with other columns or another key; the message names the table."""


def create_statements(table: str) -> list[sql.Composed]:
    """The table, its time index and its two views, each made only when missing."""
    name = sql.Identifier(table)
    columns = [
        sql.SQL("{} {} NOT NULL").format(sql.Identifier(column), sql.SQL(_TYPE_SQL[kind]))
        for column, kind in SUMMARY_COLUMNS.items()
    ]
    columns += [
        sql.SQL("{} timestamptz GENERATED ALWAYS AS (to_timestamp({})) STORED").format(
            sql.Identifier(column), sql.Identifier(source)
        )
        for column, source in (
            ("interval_start", "timestamp_start"),
            ("interval_end", "timestamp_end"),
        )
    ]
    columns.append(sql.SQL("PRIMARY KEY ({})").format(sql.Identifier(KEY)))
    return [
        sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(name, sql.SQL(", ").join(columns)),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (interval_start)").format(
            sql.Identifier(f"{table}_interval_start"), name
        ),
        sql.SQL(
            "CREATE OR REPLACE VIEW {} AS SELECT s.interval_start, s.interval_end, "
            "d.key AS device_type, d.value::bigint AS logins "
            "FROM {} AS s, jsonb_each_text(s.interval_device_type_count) AS d"
        ).format(sql.Identifier(f"{table}_by_device_type"), name),
        sql.SQL(
            "CREATE OR REPLACE VIEW {} AS SELECT s.interval_start, s.interval_end, "
            "f.key AS field, f.value::bigint AS missing "
            "FROM {} AS s, jsonb_each_text(s.interval_missing_field_count) AS f"
        ).format(sql.Identifier(f"{table}_missing_fields"), name),
    ]


def shape_problems(table: str, columns: dict[str, str], key: list[str]) -> list[str]:
    """What differs between an existing table (`columns`: name -> type, `key`: its primary
    key's columns) and the shape the sink writes."""
    problems = []
    missing = [name for name in COLUMNS if name not in columns]
    if missing:
        problems.append(f"no column {', '.join(missing)}")
    retyped = [
        f"{name} is {columns[name]}, not {kind}"
        for name, kind in COLUMNS.items()
        if name in columns and columns[name] != kind
    ]
    problems += retyped
    if key != [KEY]:
        problems.append(f"its primary key is ({', '.join(key)}), not ({KEY})")
    return problems


def prepare(connection: Connection, table: str) -> None:
    """Make the table when missing; raise `TableShapeError` when it has another shape."""
    with connection, connection.cursor() as cursor:
        columns = _columns(cursor, table)
        if not columns:
            for statement in create_statements(table):
                cursor.execute(statement)
            return
        problems = shape_problems(table, columns, _key(cursor, table))
        if problems:
            raise TableShapeError(
                f"the table {table} exists with another shape ({'; '.join(problems)}): drop or "
                f"rename it, or set POSTGRES_TABLE to another name"
            )
        for statement in create_statements(table)[1:]:  # index and views of an older release
            cursor.execute(statement)


def _columns(cursor: Any, table: str) -> dict[str, str]:
    cursor.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s",
        (table,),
    )
    return dict(cursor.fetchall())


def _key(cursor: Any, table: str) -> list[str]:
    cursor.execute(
        "SELECT a.attname FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY a.attnum",
        (table,),
    )
    return [row[0] for row in cursor.fetchall()]
