"""The summary table on a real PostgreSQL server: made when missing, one row per interval
whatever is written twice, readable per device type and per field, and a table of another
shape refused with a line naming it."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2.extras import Json, execute_values

from devtools.local_postgres import LocalPostgres
from login_stream.summary_table import COLUMNS, TableShapeError, prepare, shape_problems
from tests.spec import SUMMARY_FIELDS
from tests.summary_rows import EXTRA_FIELDS, new_table, random_summaries, rows


def upsert(server: LocalPostgres, table: str, summaries: list[dict[str, object]]) -> None:
    """Written as the sink's PostgreSQLSink writes: INSERT ... ON CONFLICT DO UPDATE."""
    fields = SUMMARY_FIELDS + EXTRA_FIELDS
    updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in fields[1:])
    connection = psycopg2.connect(**server.connection())
    with connection, connection.cursor() as cursor:
        execute_values(
            cursor,
            f"INSERT INTO {table} ({', '.join(fields)}) VALUES %s "
            f"ON CONFLICT (timestamp_start) DO UPDATE SET {updates}",
            [[Json(s[f]) if isinstance(s[f], dict) else s[f] for f in fields] for s in summaries],
        )
    connection.close()


def prepared(server: LocalPostgres) -> str:
    table = new_table()
    connection = psycopg2.connect(**server.connection())
    prepare(connection, table)
    connection.close()
    return table


def test_a_missing_table_is_made_with_every_summary_field_as_a_column(
    postgres: LocalPostgres,
) -> None:
    table = prepared(postgres)
    summaries = random_summaries(seed=1, count=5)
    upsert(postgres, table, summaries)
    assert rows(postgres, table) == summaries


def test_an_interval_written_twice_is_one_row(postgres: LocalPostgres) -> None:
    table = prepared(postgres)
    summaries = random_summaries(seed=2, count=8)
    upsert(postgres, table, summaries[:5])
    upsert(postgres, table, summaries[3:])
    upsert(postgres, table, summaries)
    assert rows(postgres, table) == summaries


def test_the_views_give_one_row_per_interval_and_device_type_or_field(
    postgres: LocalPostgres,
) -> None:
    table = prepared(postgres)
    summaries = random_summaries(seed=3, count=12)
    upsert(postgres, table, summaries)
    connection = psycopg2.connect(**postgres.connection())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT extract(epoch FROM interval_start)::bigint, device_type, logins "
            f"FROM {table}_by_device_type"
        )
        by_device = sorted(cursor.fetchall())
        cursor.execute(
            f"SELECT extract(epoch FROM interval_start)::bigint, field, missing "
            f"FROM {table}_missing_fields"
        )
        by_field = sorted(cursor.fetchall())
    connection.close()
    assert by_device == sorted(
        (s["timestamp_start"], device, count)
        for s in summaries
        for device, count in s["interval_device_type_count"].items()
    )
    assert by_field == sorted(
        (s["timestamp_start"], field, count)
        for s in summaries
        for field, count in s["interval_missing_field_count"].items()
    )


def test_an_existing_table_of_the_same_shape_is_used_as_it_is(postgres: LocalPostgres) -> None:
    table = prepared(postgres)
    summaries = random_summaries(seed=4, count=3)
    upsert(postgres, table, summaries)
    connection = psycopg2.connect(**postgres.connection())
    prepare(connection, table)
    connection.close()
    assert rows(postgres, table) == summaries


def test_a_table_of_another_shape_is_refused_naming_it(postgres: LocalPostgres) -> None:
    table = new_table()
    connection = psycopg2.connect(**postgres.connection())
    with connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (timestamp_start text, note text)")
    with pytest.raises(TableShapeError) as refused:
        prepare(connection, table)
    connection.close()
    assert table in str(refused.value)
    assert "timestamp_start is text, not bigint" in str(refused.value)


def test_shape_problems_name_missing_columns_other_types_and_another_key() -> None:
    columns = dict(COLUMNS)
    assert shape_problems("t", columns, ["timestamp_start"]) == []
    del columns["interval_end"]
    columns["timestamp_end"] = "integer"
    assert shape_problems("t", columns, ["timestamp_end"]) == [
        "no column interval_end",
        "timestamp_end is integer, not bigint",
        "its primary key is (timestamp_end), not (timestamp_start)",
    ]
