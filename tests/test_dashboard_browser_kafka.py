"""The dashboard in a real browser: the real processor summarises a known input on a real
broker, the real sink writes the summaries into a fresh table, and the page of a real
Streamlit server, in headless Chromium, shows their running totals, how long ago the newest
interval ended, and the charts, all in the browser's own time zone.

`DASHBOARD_SCREENSHOT=docs/dashboard.png` also saves the filled page there (the README's).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from devtools.local_broker import free_port
from devtools.local_postgres import LocalPostgres
from login_stream.settings import Settings
from tests.scenario import WINDOW_SECONDS, Scenario, assert_series
from tests.summary_rows import new_table, rows, running_sink, wait_until
from tests.support import (
    POLL_SECONDS,
    REPO,
    Program,
    Topics,
    produce,
    running_processor,
    summary_reader,
)

# The dashboard redraws this often unless DASHBOARD_REFRESH_SECONDS says otherwise.
REFRESH_SECONDS: Final = Settings.model_fields["dashboard_refresh_seconds"].default

# Debian's chromium; Ubuntu's chromium-browser or Google Chrome where that is what is installed.
CHROMIUM_NAMES: Final = ("chromium", "chromium-browser", "google-chrome")
CHROMIUM_ARGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Five hours and 45 minutes ahead of UTC: a page drawn in UTC, or in the server's zone, cannot
# pass for it.
VIEWER_ZONE: Final = "Asia/Kathmandu"
VIEWER_ZONE_NAMES: Final = {"Asia/Kathmandu", "Asia/Katmandu"}  # Chromium says the old name
SCREENSHOT_VARIABLE: Final = "DASHBOARD_SCREENSHOT"
START_WAIT_SECONDS: Final = 60.0
PAGE_WAIT_MS: Final = 30_000
EVENT_WINDOWS: Final = 18  # three minutes of logins
TOTAL_GROUPS: Final = ("messages", "device-types", "missing-fields")
BEHIND = re.compile(
    r"Newest interval ended (\d+) s ago, at (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \(([^)]+)\)"
)
AXIS_TIME = re.compile(r"^\d\d:\d\d:\d\d$")


class Dashboard(Program):
    """The Streamlit server of the dashboard on a free loopback port."""

    name = "dashboard"

    def __init__(self, log_path: Path, env: Mapping[str, str], as_module: bool) -> None:
        self.port = free_port()
        where = ["--server.address", "127.0.0.1"]
        if as_module:  # as the README says to start it
            command = [sys.executable, "-m", "login_stream.dashboard", "--port", str(self.port)]
        else:
            command = [
                sys.executable,
                *("-m", "streamlit", "run", str(REPO / "login_stream" / "dashboard.py")),
                *("--server.port", str(self.port)),
                *("--server.headless", "true", "--browser.gatherUsageStats", "false"),
            ]
        super().__init__([*command, *where], env, log_path)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def wait_until_healthy(self) -> None:
        def healthy() -> bool:
            assert self.running(), f"dashboard exited\n{self.log()}"
            try:
                with urllib.request.urlopen(
                    f"{self.url}_stcore/health", timeout=POLL_SECONDS
                ) as response:
                    return bool(response.status == HTTPStatus.OK)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                return False

        wait_until(healthy, "the dashboard's health endpoint answering", START_WAIT_SECONDS)


@contextmanager
def running_dashboard(
    log_path: Path, env: Mapping[str, str], as_module: bool = True
) -> Iterator[Dashboard]:
    dashboard = Dashboard(log_path, env, as_module)
    try:
        dashboard.wait_until_healthy()
        yield dashboard
    finally:
        code = dashboard.stop()
    assert code == 0, dashboard.log()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    found = [path for name in CHROMIUM_NAMES if (path := shutil.which(name))]
    assert found, "no Chromium: run scripts/install_system_packages.sh (apt-get install chromium)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=found[0], args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def opened(browser: Browser, url: str) -> Iterator[Page]:
    context = browser.new_context(timezone_id=VIEWER_ZONE, viewport={"width": 1280, "height": 1150})
    try:
        page = context.new_page()
        page.goto(url)
        yield page
    finally:
        context.close()


def recent_scenario(seed: int) -> Scenario:
    """Three minutes of logins ending at the last window boundary, with invalid messages and
    late ones, so the charts have something of everything."""
    now = int(time.time())
    first = now - now % WINDOW_SECONDS - EVENT_WINDOWS * WINDOW_SECONDS
    scenario = Scenario(rng=random.Random(seed), first_window=first)
    for index in range(EVENT_WINDOWS):
        scenario.add_window_events(index, scenario.rng.randint(15, 60), garbage_rate=0.04)
    for index in (3, 7, 11):
        late = scenario.add_delayed_event(first + index * WINDOW_SECONDS + 1.5)
        assert late
    return scenario


def shown_totals(page: Page) -> dict[str, dict[str, int]]:
    """The running totals on the page: group -> label -> count."""
    shown = {}
    for group in TOTAL_GROUPS:
        pairs = page.eval_on_selector_all(
            f".st-key-totals-{group} [data-testid=stMetric]",
            """metrics => metrics.map(m => [
                m.querySelector('[data-testid=stMetricLabel]')?.innerText.trim() ?? '',
                m.querySelector('[data-testid=stMetricValue]')?.innerText.trim() ?? '',
            ])""",
        )
        # A metric caught while it is redrawn has no value yet: the next look has it.
        shown[group] = {label: int(value.replace(",", "")) for label, value in pairs if value}
    return shown


def expected_totals(summary: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {
        "messages": {
            "logins": summary["total_messages_consumed"],
            "invalid": summary["total_invalid_message_count"],
            "late": summary["total_late_message_count"],
        },
        "device-types": summary["total_device_type_count"],
        "missing-fields": summary["total_missing_field_count"],
    }


def clock_times(start: int, end: int, zone: tzinfo) -> set[str]:
    """Every second from `start` to `end` (epoch s) as the clock of `zone` shows it."""
    return {
        datetime.fromtimestamp(second, zone).strftime("%H:%M:%S") for second in range(start, end)
    }


def test_the_page_shows_what_the_pipeline_wrote_in_the_viewers_time(
    topics: Topics, postgres: LocalPostgres, browser: Browser, tmp_path: Path
) -> None:
    scenario = recent_scenario(seed=71)
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected()
    table = new_table()
    env = {**postgres.settings(), "POSTGRES_TABLE": table}
    zone = ZoneInfo(VIEWER_ZONE)

    with (
        running_dashboard(tmp_path / "dashboard.log", env) as dashboard,
        opened(browser, dashboard.url) as page,
    ):
        # Before the sink has made the table: a message, not a traceback.
        page.get_by_text(f"The table {table} does not exist yet").wait_for(timeout=PAGE_WAIT_MS)

        # Not the sink's working directory: its default STATE_DIR is `state` there.
        state_dir = tmp_path / "processor-state"
        log = tmp_path / "processor.log"
        with (
            summary_reader(topics) as reader,
            running_processor(topics, state_dir, log) as processor,
            running_sink(topics, postgres, table, tmp_path / "sink.log") as sink,
        ):
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            published = reader.summaries
            assert_series(published, expected)
            wait_until(
                lambda: len(rows(postgres, table)) >= len(published), "the summaries in the table"
            )
            # The page redraws by itself, without a reload.
            latest = published[-1]
            wait_until(
                lambda: shown_totals(page) == expected_totals(latest),
                "the page showing the newest totals",
                timeout=REFRESH_SECONDS * 4,
            )
            text = page.inner_text("body")
            read_at = time.time()
            table_rows = rows(postgres, table)  # after the page: it holds the row shown
            assert expected_totals(table_rows[-1]) == expected_totals(latest)
            behind = BEHIND.search(text)
            assert behind, text
            seconds, ended, zone_name = behind.groups()
            assert zone_name in VIEWER_ZONE_NAMES
            ended_at = datetime.strptime(ended, "%Y-%m-%d %H:%M:%S").replace(tzinfo=zone)
            newest_end = int(ended_at.timestamp())
            assert newest_end in {row["timestamp_end"] for row in table_rows}
            assert abs(int(seconds) - (read_at - newest_end)) <= REFRESH_SECONDS + 2

            charts = page.locator("[data-testid=stVegaLiteChart].vega-embed > svg.marks")
            charts.nth(2).wait_for(timeout=PAGE_WAIT_MS)
            assert charts.count() == 3
            labels = page.eval_on_selector_all(
                "[data-testid=stVegaLiteChart] g.role-axis-label text",
                "texts => texts.map(t => t.textContent)",
            )
            times = {label for label in labels if AXIS_TIME.match(label)}
            assert len(times) >= 3, labels
            first, last = table_rows[0]["timestamp_start"], int(read_at) + WINDOW_SECONDS
            local, utc = clock_times(first, last + 1, zone), clock_times(first, last + 1, UTC)
            assert not local & utc  # the check below tells the two apart
            assert times <= local, sorted(times - local)

            assert "Traceback" not in text
            assert postgres.password not in text
            screenshot = os.environ.get(SCREENSHOT_VARIABLE)
            if screenshot:  # the whole page, the height of its content
                height = page.evaluate(
                    "document.querySelector('[data-testid=stMainBlockContainer]').scrollHeight"
                )
                page.set_viewport_size({"width": 1280, "height": int(height)})
                page.screenshot(path=REPO / screenshot)
            assert sink.stop() == 0, sink.log()
            assert processor.stop() == 0, processor.log()


def test_a_database_that_cannot_be_reached_is_a_message_on_the_page(
    browser: Browser, tmp_path: Path
) -> None:
    secret = "not-shown-5581"
    port = free_port()  # nothing listens there
    env = {
        "POSTGRES_HOST": "127.0.0.1",
        "POSTGRES_PORT": str(port),
        "POSTGRES_PASSWORD": secret,
    }
    with (
        running_dashboard(tmp_path / "dashboard.log", env, as_module=False) as dashboard,
        opened(browser, dashboard.url) as page,
    ):
        alert = page.locator("[data-testid=stAlert]", has_text="cannot be reached")
        alert.wait_for(timeout=PAGE_WAIT_MS)
        assert f"PostgreSQL at 127.0.0.1:{port}" in alert.inner_text()
        text = page.inner_text("body")
        assert page.locator("[data-testid=stException]").count() == 0
        assert "Traceback" not in text
        assert secret not in page.content()
