"""The dashboard's data, without a browser: rows of a real PostgreSQL server's summary table
become the plain lists its charts and totals are drawn from, and every way of having nothing
to show is one line for the page, never the password."""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import pytest
from psycopg2.extras import Json

from devtools.local_broker import free_port
from devtools.local_postgres import LocalPostgres
from login_stream import dashboard
from login_stream.settings import Settings, load_settings
from login_stream.summary_table import SUMMARY_COLUMNS, prepare
from tests.summary_rows import new_table, random_summaries


def settings_for(server: LocalPostgres, table: str, **overrides: object) -> Settings:
    env = {name.lower(): value for name, value in server.settings().items()}
    return load_settings(**{**env, "postgres_table": table, **overrides})


def fill(server: LocalPostgres, table: str, summaries: list[dict[str, Any]]) -> None:
    """The table as the sink makes it, with `summaries` written in a shuffled order."""
    connection = psycopg2.connect(**server.connection())
    try:
        prepare(connection, table)
        shuffled = random.Random(0).sample(summaries, len(summaries))
        columns = ", ".join(SUMMARY_COLUMNS)
        places = ", ".join(["%s"] * len(SUMMARY_COLUMNS))
        with connection, connection.cursor() as cursor:
            for summary in shuffled:
                values = [summary[name] for name in SUMMARY_COLUMNS]
                cursor.execute(
                    f"INSERT INTO {table} ({columns}) VALUES ({places})",
                    [Json(value) if isinstance(value, dict) else value for value in values],
                )
    finally:
        connection.close()


def bounds(summary: dict[str, Any]) -> dict[str, str]:
    return {
        "start": dashboard.iso_time(summary["timestamp_start"]),
        "end": dashboard.iso_time(summary["timestamp_end"]),
    }


def test_the_newest_rows_come_oldest_first_equal_to_the_summaries(
    postgres: LocalPostgres,
) -> None:
    summaries = random_summaries(seed=61, count=40)
    table = new_table()
    fill(postgres, table, summaries)
    settings = settings_for(postgres, table)
    assert dashboard.load(settings, limit=25) == dashboard.Snapshot(summaries[-25:])
    assert dashboard.load(settings, limit=100).summaries == summaries


def test_each_chart_has_one_row_per_interval_and_category(postgres: LocalPostgres) -> None:
    summaries = random_summaries(seed=62, count=30)
    table = new_table()
    fill(postgres, table, summaries)
    shown = dashboard.load(settings_for(postgres, table)).summaries

    assert dashboard.logins_by_device_type(shown) == [
        {**bounds(s), "device_type": device, "logins": count}
        for s in summaries
        for device, count in sorted(s["interval_device_type_count"].items())
    ]
    assert dashboard.missing_fields(shown) == [
        {**bounds(s), "field": field, "missing": count}
        for s in summaries
        for field, count in sorted(s["interval_missing_field_count"].items())
    ]
    assert dashboard.invalid_and_late(shown) == [
        {**bounds(s), "kind": kind, "messages": s[f"interval_{kind}_message_count"]}
        for s in summaries
        for kind in ("invalid", "late")
    ]


def test_logins_without_a_device_type_complete_their_interval() -> None:
    summary = random_summaries(seed=63, count=1)[0]
    summary["interval_device_type_count"] = {"web": 4, "iOS": 2}
    summary["interval_messages_consumed"] = 9
    rows = dashboard.logins_by_device_type([summary])
    assert {row["device_type"]: row["logins"] for row in rows} == {
        "web": 4,
        "iOS": 2,
        dashboard.NO_DEVICE_TYPE: 3,
    }


def test_times_go_to_the_browser_as_instants_with_their_offset() -> None:
    for summary in random_summaries(seed=64, count=5):
        for row in dashboard.invalid_and_late([summary]):
            start, end = datetime.fromisoformat(row["start"]), datetime.fromisoformat(row["end"])
            assert start.utcoffset() == end.utcoffset() == timedelta(0)
            assert start.timestamp() == summary["timestamp_start"]
            assert end.timestamp() == summary["timestamp_end"]


def test_the_charts_draw_time_on_the_viewers_local_scale() -> None:
    rows = dashboard.logins_by_device_type(random_summaries(seed=65, count=3))
    spec = dashboard.stacked_bars(rows, "device_type", "logins", (0, 30_000)).to_dict()
    x = spec["encoding"]["x"]
    assert x["type"] == "temporal"
    assert x["axis"]["format"] == dashboard.AXIS_TIME_FORMAT
    assert "utc" not in str(spec).lower()  # no UTC scale, time unit or format
    assert spec["datasets"][spec["data"]["name"]] == rows


def test_the_totals_are_the_newest_rows(postgres: LocalPostgres) -> None:
    summaries = random_summaries(seed=66, count=12)
    table = new_table()
    fill(postgres, table, summaries)
    newest = dashboard.load(settings_for(postgres, table)).summaries[-1]
    last = summaries[-1]
    assert dashboard.totals(newest) == {
        "messages": {
            "logins": last["total_messages_consumed"],
            "invalid": last["total_invalid_message_count"],
            "late": last["total_late_message_count"],
        },
        "device types": last["total_device_type_count"],
        "missing fields": last["total_missing_field_count"],
    }


def test_how_far_behind_the_newest_interval_is() -> None:
    summary = {"timestamp_start": 1_000, "timestamp_end": 1_010}
    assert dashboard.seconds_behind(summary, now=1_022.5) == 12.5
    assert dashboard.seconds_behind(summary, now=1_005) == 0
    assert not dashboard.is_stale(summary, 30)
    assert dashboard.is_stale(summary, 31)
    assert not dashboard.is_stale({"timestamp_start": 0, "timestamp_end": 60}, 180)
    assert dashboard.is_stale({"timestamp_start": 0, "timestamp_end": 60}, 181)
    assert [dashboard.describe_age(s) for s in (0, 12.4, 119, 150, 7199, 7260, 200_000)] == [
        "0 s",
        "12 s",
        "119 s",
        "2 min",
        "119 min",
        "2 h 1 min",
        "2 days",
    ]


def test_a_table_not_made_yet_and_an_empty_one_are_waited_for(postgres: LocalPostgres) -> None:
    table = new_table()
    settings = settings_for(postgres, table)
    missing = dashboard.load(settings)
    assert missing.kind == "waiting"
    assert f"The table {table} does not exist yet" in str(missing.problem)
    fill(postgres, table, [])
    empty = dashboard.load(settings)
    assert empty.kind == "waiting"
    assert f"The table {table} is still empty" in str(empty.problem)


def test_a_database_that_cannot_be_reached_is_one_line_without_the_password(
    postgres: LocalPostgres,
) -> None:
    secret = "not-shown-7291"
    port = free_port()
    snapshot = dashboard.load(
        settings_for(postgres, new_table(), postgres_port=port, postgres_password=secret)
    )
    assert snapshot.kind == "error"
    assert str(snapshot.problem).startswith(f"PostgreSQL at 127.0.0.1:{port} ")
    assert "cannot be reached" in str(snapshot.problem)
    assert "\n" not in str(snapshot.problem)
    assert secret not in str(snapshot.problem)


def test_a_wrong_password_is_named_as_the_setting_to_check_never_shown(
    postgres: LocalPostgres,
) -> None:
    secret = "not-shown-0417"
    snapshot = dashboard.load(settings_for(postgres, new_table(), postgres_password=secret))
    assert snapshot.kind == "error"
    assert "refused the dashboard" in str(snapshot.problem)
    assert "POSTGRES_PASSWORD" in str(snapshot.problem)
    assert secret not in str(snapshot.problem)


def test_without_a_database_host_the_page_says_so(postgres: LocalPostgres) -> None:
    snapshot = dashboard.load(settings_for(postgres, new_table(), postgres_host=""))
    assert snapshot.summaries == []
    assert "POSTGRES_HOST is not set" in str(snapshot.problem)


def test_the_command_starts_streamlit_on_the_port_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = str(Path(dashboard.__file__).resolve())
    default = dashboard.streamlit_command([])
    assert default[:5] == [sys.executable, "-m", "streamlit", "run", script]
    assert _option(default, "--server.port") == "8501"
    monkeypatch.setenv("DASHBOARD_PORT", "8765")
    assert _option(dashboard.streamlit_command([]), "--server.port") == "8765"
    assert _option(default, "--server.headless") == "true"
    assert _option(default, "--browser.gatherUsageStats") == "false"
    chosen = dashboard.streamlit_command(["--port", "9123", "--server.address", "127.0.0.1"])
    assert _option(chosen, "--server.port") == "9123"
    assert _option(chosen, "--server.address") == "127.0.0.1"


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]
