"""A web dashboard of the summary table the sink writes (`python -m login_stream.sink`).

    streamlit run login_stream/dashboard.py
    python -m login_stream.dashboard --port 8501     # the same, headless

It reads the POSTGRES_* settings and redraws itself every few seconds: logins per interval by
device type, missing fields, invalid and late messages, the running totals of the newest row,
and how long ago the newest interval ended. The data functions (SQL to plain lists of dicts)
know nothing of Streamlit, so they are tested without a browser.

Times reach the browser as ISO 8601 strings with their UTC offset, which Vega parses into
instants; its time scales and formats are local, not UTC, so every viewer reads the charts in
the browser's own time zone. The text lines use the zone the browser reports (`st.context`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import altair as alt
import psycopg2
import streamlit as st
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from streamlit import runtime

# Absolute imports: `streamlit run` executes this file as a script, outside its package.
from login_stream.quix_internals import POSTGRES_REFUSAL_TEXTS
from login_stream.settings import ConfigError, Settings, load_settings
from login_stream.summary_table import SUMMARY_COLUMNS, database, described

# Logins whose event named no device type: the rest of the interval's count.
NO_DEVICE_TYPE: Final = "not given"
# A d3 time format: Vega applies it in the browser's time zone.
AXIS_TIME_FORMAT: Final = "%H:%M:%S"
TEXT_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
# The newest interval is reported as stale this many intervals (and at least
# STALE_MIN_SECONDS) after its end.
STALE_INTERVALS: Final = 3
STALE_MIN_SECONDS: Final = 30


@dataclass(frozen=True)
class Snapshot:
    """The newest rows of the table, oldest first; or why there are none to show."""

    summaries: list[dict[str, Any]]
    problem: str | None = None
    # "error": the database or the settings need a look; "waiting": nothing written yet.
    kind: Literal["error", "waiting"] = "error"


def load(settings: Settings, limit: int | None = None) -> Snapshot:
    """The newest `limit` (default DASHBOARD_INTERVALS) rows of POSTGRES_TABLE, or a one-line
    problem for the page (never the password)."""
    if not settings.postgres_host:
        return Snapshot([], "POSTGRES_HOST is not set: the dashboard reads the sink's table")
    where = described(settings)
    table = settings.postgres_table
    try:
        connection = psycopg2.connect(
            **database(settings),
            connect_timeout=settings.postgres_connect_timeout_seconds,
            application_name="login-stream-dashboard",
        )
    except psycopg2.OperationalError as error:
        reason = _first_line(error)
        if any(text in reason for text in POSTGRES_REFUSAL_TEXTS):
            return Snapshot(
                [],
                f"{where} refused the dashboard ({reason}); check POSTGRES_USER, "
                "POSTGRES_PASSWORD and POSTGRES_DATABASE",
            )
        return Snapshot([], f"{where} cannot be reached ({reason}); trying again")
    try:
        connection.set_session(readonly=True, autocommit=True)
        if not table_exists(connection, table):
            return Snapshot(
                [],
                f"The table {table} does not exist yet in {where}: the sink makes it "
                "when it starts (python -m login_stream.sink).",
                "waiting",
            )
        summaries = read_summaries(connection, table, limit or settings.dashboard_intervals)
    except psycopg2.Error as error:
        return Snapshot([], f"reading the table {table} of {where} failed: {_first_line(error)}")
    finally:
        connection.close()
    if not summaries:
        return Snapshot(
            [],
            f"The table {table} is still empty: its first row comes once the processor has "
            "closed an interval and the sink has written it.",
            "waiting",
        )
    return Snapshot(summaries)


def table_exists(connection: Connection, table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
        row = cursor.fetchone()
    return bool(row and row[0])


def read_summaries(connection: Connection, table: str, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` rows, oldest first, as the summary's fields."""
    query = sql.SQL("SELECT {} FROM {} ORDER BY timestamp_start DESC LIMIT %s").format(
        sql.SQL(", ").join(map(sql.Identifier, SUMMARY_COLUMNS)), sql.Identifier(table)
    )
    with connection.cursor() as cursor:
        cursor.execute(query, (limit,))
        newest_first = [dict(zip(SUMMARY_COLUMNS, row, strict=True)) for row in cursor]
    return newest_first[::-1]


def logins_by_device_type(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per interval and device type: start, end, device_type, logins. Logins without
    a device type count under NO_DEVICE_TYPE, so an interval's rows add up to its logins."""
    rows = []
    for summary in summaries:
        counts = dict(summary["interval_device_type_count"])
        untyped = summary["interval_messages_consumed"] - sum(counts.values())
        if untyped > 0:
            counts[NO_DEVICE_TYPE] = untyped
        rows += _long(summary, counts, "device_type", "logins")
    return rows


def missing_fields(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per interval and field missing from its events: start, end, field, missing."""
    rows = []
    for summary in summaries:
        rows += _long(summary, summary["interval_missing_field_count"], "field", "missing")
    return rows


def invalid_and_late(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two rows per interval: start, end, kind (invalid or late), messages."""
    rows = []
    for summary in summaries:
        counts = {
            "invalid": summary["interval_invalid_message_count"],
            "late": summary["interval_late_message_count"],
        }
        rows += _long(summary, counts, "kind", "messages")
    return rows


def totals(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    """A row's running totals, in groups: label -> count."""
    return {
        "messages": {
            "logins": summary["total_messages_consumed"],
            "invalid": summary["total_invalid_message_count"],
            "late": summary["total_late_message_count"],
        },
        "device types": dict(sorted(summary["total_device_type_count"].items())),
        "missing fields": dict(sorted(summary["total_missing_field_count"].items())),
    }


def seconds_behind(summary: dict[str, Any], now: float) -> float:
    """How long ago the row's interval ended."""
    return max(0.0, now - float(summary["timestamp_end"]))


def is_stale(summary: dict[str, Any], behind: float) -> bool:
    length = int(summary["timestamp_end"]) - int(summary["timestamp_start"])
    return behind > max(STALE_MIN_SECONDS, STALE_INTERVALS * length)


def describe_age(seconds: float) -> str:
    whole = round(seconds)
    if whole < 120:
        return f"{whole} s"
    if whole < 2 * 3600:
        return f"{whole // 60} min"
    if whole < 2 * 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} days"


def iso_time(epoch_seconds: int) -> str:
    """An instant as the browser parses it unambiguously: ISO 8601 with its UTC offset."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat()


def _long(
    summary: dict[str, Any], counts: dict[str, int], name: str, value: str
) -> list[dict[str, Any]]:
    start, end = iso_time(summary["timestamp_start"]), iso_time(summary["timestamp_end"])
    return [
        {"start": start, "end": end, name: key, value: count}
        for key, count in sorted(counts.items())
    ]


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# The page.


def stacked_bars(
    rows: list[dict[str, Any]], category: str, value: str, domain_ms: tuple[int, int]
) -> alt.Chart:
    """Bars over each interval, stacked by `category`, on a time axis in local time."""
    when = [
        alt.Tooltip("start:T", title="from", format=AXIS_TIME_FORMAT),
        alt.Tooltip("end:T", title="to", format=AXIS_TIME_FORMAT),
    ]
    chart: alt.Chart = (
        alt.Chart({"values": rows})
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X(
                "start:T",
                title=None,
                scale=alt.Scale(domain=list(domain_ms)),
                axis=alt.Axis(format=AXIS_TIME_FORMAT, labelOverlap=True),
            ),
            x2="end:T",
            y=alt.Y(f"sum({value}):Q", title=value),
            color=alt.Color(f"{category}:N", title=None, legend=alt.Legend(orient="right")),
            tooltip=[*when, f"{category}:N", f"{value}:Q"],
        )
        # SVG, not canvas: the axis labels are text a test can read.
        .properties(height=240, usermeta={"embedOptions": {"renderer": "svg"}})
    )
    return chart


def viewer_zone() -> tuple[tzinfo, str]:
    """The browser's time zone, as it reports it; UTC when it does not."""
    name = st.context.timezone
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC, "UTC"


def show(snapshot: Snapshot) -> None:
    if snapshot.problem is not None:
        (st.info if snapshot.kind == "waiting" else st.error)(snapshot.problem)
        return
    summaries = snapshot.summaries
    newest = summaries[-1]
    zone, zone_name = viewer_zone()
    behind = seconds_behind(newest, time.time())
    ended = datetime.fromtimestamp(newest["timestamp_end"], zone).strftime(TEXT_TIME_FORMAT)
    line = f"Newest interval ended {describe_age(behind)} ago, at {ended} ({zone_name})."
    if is_stale(newest, behind):
        st.warning(f"{line} Are the processor and the sink running?", icon=":material/schedule:")
    else:
        st.success(line, icon=":material/schedule:")

    st.subheader("Totals")
    groups = totals(newest)
    for column, (group, counts) in zip(st.columns(len(groups)), groups.items(), strict=True):
        with column:
            st.caption(group)
            with st.container(horizontal=True, key="totals-" + group.replace(" ", "-")):
                for label, count in counts.items():
                    st.metric(label, f"{count:,}", border=True, width="content")
                if not counts:
                    st.markdown("none yet")

    domain_ms = (summaries[0]["timestamp_start"] * 1000, newest["timestamp_end"] * 1000)
    st.subheader("Logins per interval, by device type")
    st.altair_chart(
        stacked_bars(logins_by_device_type(summaries), "device_type", "logins", domain_ms)
    )
    left, right = st.columns(2)
    with left:
        st.subheader("Missing fields per interval")
        st.altair_chart(stacked_bars(missing_fields(summaries), "field", "missing", domain_ms))
    with right:
        st.subheader("Invalid and late messages per interval")
        st.altair_chart(stacked_bars(invalid_and_late(summaries), "kind", "messages", domain_ms))


def page() -> None:
    st.set_page_config(page_title="Login summaries", page_icon=":bar_chart:", layout="wide")
    st.title("Login summaries")
    try:
        settings = load_settings()
    except ConfigError as error:
        st.error(str(error))
        return
    _, zone_name = viewer_zone()
    st.caption(
        f"Table {settings.postgres_table} of PostgreSQL at {settings.postgres_host}:"
        f"{settings.postgres_port}, database {settings.postgres_database}; the newest "
        f"{settings.dashboard_intervals} intervals, refreshed every "
        f"{settings.dashboard_refresh_seconds:g} s; times in your "
        f"time zone ({zone_name})."
    )

    @st.fragment(run_every=settings.dashboard_refresh_seconds)
    def live() -> None:
        show(load(settings))

    live()


def streamlit_command(argv: list[str] | None = None) -> list[str]:
    """`streamlit run` on this file: headless, no usage statistics, no reloading, no developer
    menu; streamlit's own options (e.g. --server.address 127.0.0.1) are passed on."""
    parser = argparse.ArgumentParser(
        prog="python -m login_stream.dashboard",
        description="The web dashboard of the summary table.",
        epilog="Other options are passed on to `streamlit run`.",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="default: DASHBOARD_PORT (8501 unless set)"
    )
    args, rest = parser.parse_known_args(argv)
    port = args.port if args.port is not None else load_settings().dashboard_port
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(Path(__file__).resolve()),
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
        *rest,
    ]


def main(argv: list[str] | None = None) -> int:
    try:
        command = streamlit_command(argv)
    except ConfigError as error:
        print(f"dashboard: {error}", file=sys.stderr)
        return 2
    os.execv(command[0], command)  # streamlit in this process: signals reach it directly


if __name__ == "__main__":
    if runtime.exists():
        page()
    else:
        sys.exit(main())
