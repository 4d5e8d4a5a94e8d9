"""Fatal errors reach Sentry through the SDK's real transport: a small HTTP server on
127.0.0.1 stands in for Sentry's ingest endpoint, and the DSN points at it."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import sentry_sdk

from devtools.local_broker import free_port
from login_stream.error_reports import RELEASE, VERSION, ErrorReports
from login_stream.settings import load_settings

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENT = "staging-eu"
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"


class Receiver:
    """Sentry's envelope endpoint, keeping every event it was sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        events = self.events

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = body.splitlines()
                # An envelope: its header, then per item a header line and a payload line.
                for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                    if orjson.loads(header).get("type") == "event":
                        events.append(orjson.loads(payload))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://{PUBLIC_KEY}@127.0.0.1:{self._server.server_port}/42"

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def test_a_processor_whose_brokers_do_not_answer_reports_its_one_line_reason_once(
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
        "STATE_DIR": str(tmp_path / "state"),
        "HEALTH_PORT": "0",
        "SENTRY_ENVIRONMENT": ENVIRONMENT,
    }
    with Receiver().running() as receiver:
        env["SENTRY_DSN"] = receiver.dsn
        result = subprocess.run(
            [sys.executable, str(REPO / "app.py")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert len(receiver.events) == 1, receiver.events
    event = receiver.events[0]
    assert errors[0].endswith(event["message"]) and "KAFKA_BOOTSTRAP_SERVERS" in event["message"]
    assert event["level"] == "fatal"
    assert event["release"] == RELEASE == f"login-stream@{VERSION}"
    assert event["environment"] == ENVIRONMENT
    assert PUBLIC_KEY not in result.stderr + result.stdout


def test_without_a_dsn_the_sdk_is_never_started() -> None:
    reports = ErrorReports(load_settings())
    reports.fatal("a reason")
    assert not reports.enabled
    assert not sentry_sdk.get_client().is_active()


def test_the_version_printed_is_the_release_reported() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"login-stream {VERSION}"
    assert RELEASE.endswith(VERSION)
