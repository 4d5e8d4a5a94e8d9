"""Liveness and readiness of the processor, over HTTP for compose and Kubernetes probes.

The processor is *ready* while records keep flowing through the pipeline: its own clock ticks
every `CLOCK_TICK_SECONDS` even when `user-login` is quiet, so a processor that has not
finished a record for `HEALTH_STALE_SECONDS` is disconnected, still starting, or has no
partitions assigned (a standby instance). It is *live* while its processing thread runs.
Liveness deliberately ignores the records: a restart cures none of those three cases, and a
broker outage must not get every processor restarted at once; the processor exits by itself
(code 1) when Kafka trouble outlasts its consumer session, and is restarted then.

    GET /live     200 "live" | 503 "processing thread stopped"
    GET /ready    200 "ready" | 503 "not ready ..."
    GET /metrics  Prometheus metrics (see `metrics`)

`python -m login_stream.health live|ready` asks the local processor (on `HEALTH_PORT`) and
exits 0 or 1: a probe command for images without curl, as in `compose.yaml`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from .metrics import CONTENT_TYPE, Metrics
from .settings import ConfigError, load_settings

logger = logging.getLogger(__name__)

LIVE_PATH: Final = "/live"
READY_PATH: Final = "/ready"
METRICS_PATH: Final = "/metrics"
PROBE_TIMEOUT_SECONDS: Final = 3.0
LOOPBACK: Final = "127.0.0.1"
ANY_ADDRESS: Final = ("0.0.0.0", "::", "")
PROBE_OK: Final = 0
PROBE_FAILED: Final = 1
PROBE_UNUSABLE: Final = 2


class Progress:
    """When the pipeline last finished a record, and whether its processing thread runs;
    `record_processed` is Quix's `on_message_processed` callback: one clock read per record."""

    def __init__(
        self,
        stale_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        processing_thread: threading.Thread | None = None,
    ) -> None:
        self._stale_seconds = stale_seconds
        self._clock = clock
        self._last: float | None = None
        # Quix runs its poll-and-process loop on the thread that calls `Application.run`.
        self._processing_thread = processing_thread or threading.current_thread()
        self._conditions: list[Callable[[], tuple[bool, str]]] = []

    def require(self, condition: Callable[[], tuple[bool, str]]) -> None:
        """Both checks also fail, with its reason, while `condition` fails (a stuck commit)."""
        self._conditions.append(condition)

    def _failed_condition(self) -> tuple[bool, str] | None:
        for condition in self._conditions:
            ok, reason = condition()
            if not ok:
                return False, reason
        return None

    def record_processed(self, _topic: str, _partition: int, _offset: int) -> None:
        self._last = self._clock()

    def ready(self) -> tuple[bool, str]:
        if failed := self._failed_condition():
            return failed
        if self._last is None:
            return False, "not ready: no record processed yet"
        idle = self._clock() - self._last
        if idle > self._stale_seconds:
            return False, f"not ready: no record processed for {idle:.0f} s"
        return True, "ready"

    def live(self) -> tuple[bool, str]:
        if failed := self._failed_condition():
            return failed
        if not self._processing_thread.is_alive():
            return False, "processing thread stopped"
        return True, "live"


class HealthServer:
    """Serves `/live` and `/ready` for `progress`, and `/metrics`, on a background thread."""

    def __init__(self, progress: Progress, host: str, port: int, metrics: Metrics) -> None:
        checks = {LIVE_PATH: progress.live, READY_PATH: progress.ready}
        # The `login_stream_ready` gauge asks the very check `/ready` answers with.
        metrics.report_readiness(progress.ready)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == METRICS_PATH:
                    self._answer(HTTPStatus.OK, CONTENT_TYPE, metrics.exposition())
                    return
                check = checks.get(self.path)
                if check is None:
                    self.send_error(HTTPStatus.NOT_FOUND)
                    return
                ok, text = check()
                status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
                self._answer(status, "text/plain; charset=utf-8", text.encode())

            def _answer(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                # Probes every few seconds would drown the processor's own log.
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="login-stream-health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()
        logger.info(
            "health endpoints on port %d: %s %s %s", self.port, LIVE_PATH, READY_PATH, METRICS_PATH
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def probe(port: int, check: str, host: str = LOOPBACK) -> tuple[bool, str]:
    """Ask the processor's health endpoint; never raises for an absent or failing processor."""
    url = f"http://{host}:{port}/{check}"
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            return True, response.read().decode()
    except urllib.error.HTTPError as error:
        return False, error.read().decode() or str(error)
    except (urllib.error.URLError, OSError) as error:
        return False, f"no answer on port {port}: {error}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m login_stream.health", description="Probe the local processor."
    )
    parser.add_argument("check", choices=["live", "ready"])
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"login-stream: {exc}", file=sys.stderr)
        return PROBE_UNUSABLE
    if not settings.health_port:
        print("login-stream: health endpoints are off (HEALTH_PORT=0)", file=sys.stderr)
        return PROBE_UNUSABLE
    # Listening on every address includes loopback; a specific address must be asked itself.
    host = LOOPBACK if settings.health_host in ANY_ADDRESS else settings.health_host
    ok, text = probe(settings.health_port, args.check, host)
    print(text)
    return PROBE_OK if ok else PROBE_FAILED


if __name__ == "__main__":
    sys.exit(main())
