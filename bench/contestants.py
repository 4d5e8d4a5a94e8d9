"""The two contestants, each run as a child process and measured the same way.

* the pipeline as shipped: `python app.py`, configured only through its environment, with a
  fresh consumer group, output and dead-letter topics and an empty state directory per round;
* the baseline: `python -m bench.baseline` (see that module).

CPU time and peak RSS come from the kernel's account of the child (`os.wait4`), so they cover
the whole process, start-up and shutdown included, and nothing of the harness. Wall time runs
from the first message processed to the last summary: for the pipeline, from its readiness
endpoint first answering (it turns ready on its first processed record) to the arrival of the
summary of the last interval with data; for the baseline, from its first message to its
summaries being written, as it reports them. Start-up (imports, topic creation, group join)
is thus left out of the rate, as it would be of a long-running processor.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from login_stream.generator import ensure_topic
from login_stream.health import probe
from login_stream.local_broker import free_port

from . import shipped
from .dataset import Dataset

REPO: Final = Path(__file__).resolve().parent.parent
PIPELINE: Final = "pipeline"
BASELINE: Final = "baseline"
STOP_TIMEOUT_SECONDS: Final = 30.0
WAIT_STEP_SECONDS: Final = 0.01
POLL_SECONDS: Final = 0.1
LOG_TAIL_LINES: Final = 30
KIB_PER_MIB: Final = 1024
# A deadline only to turn a hang into an error: a minute of start-up, then 0.5 ms per event
# (the pipeline needs about 0.03 ms of CPU per event).
BASE_TIMEOUT_SECONDS: Final = 60.0
TIMEOUT_SECONDS_PER_EVENT: Final = 0.0005


class ContestantError(Exception):
    """A contestant failed, hung or published something unreadable; message for the user."""


@dataclass(frozen=True)
class Measurement:
    contestant: str
    round: int
    events: int
    wall_s: float
    cpu_s: float
    peak_rss_kib: int
    summaries: list[dict[str, Any]]

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s * 1_000_000 / self.events

    @property
    def peak_rss_mib(self) -> float:
        """Peak resident set size in MiB (ru_maxrss is in KiB on Linux)."""
        return self.peak_rss_kib / KIB_PER_MIB


@dataclass(frozen=True)
class Round:
    """What one run of one contestant gets: the data, the broker, a fresh working folder."""

    bootstrap: str
    dataset: Dataset
    number: int
    name: str  # unique per run and round: the pipeline's group and topics are named after it
    workdir: Path

    def new_deadline(self) -> float:
        timeout = BASE_TIMEOUT_SECONDS + TIMEOUT_SECONDS_PER_EVENT * self.dataset.events
        return time.monotonic() + timeout


class Child:
    """A child process whose resource usage is collected with `os.wait4` when it ends."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.exit_code: int | None = None
        self.usage: resource.struct_rusage | None = None

    def poll(self) -> bool:
        """True once the child has exited (and has been reaped)."""
        if self.exit_code is None:
            pid, status, usage = os.wait4(self._process.pid, os.WNOHANG)
            if pid != 0:
                self._reaped(status, usage)
        return self.exit_code is not None

    def wait(self, deadline: float) -> bool:
        """Wait until the child exits or `deadline` (monotonic) passes; True if it exited."""
        while not self.poll():
            if time.monotonic() >= deadline:
                return False
            time.sleep(WAIT_STEP_SECONDS)
        return True

    def stop(self) -> None:
        """SIGTERM (the processor's graceful shutdown), then SIGKILL if it does not exit."""
        if self.poll():
            return
        self._process.send_signal(signal.SIGTERM)
        if not self.wait(time.monotonic() + STOP_TIMEOUT_SECONDS):
            self.kill()
            raise ContestantError(
                f"{self.log_path.parent.name}: ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f}s"
            )

    def kill(self) -> None:
        if not self.poll():
            self._process.kill()
            _pid, status, usage = os.wait4(self._process.pid, 0)
            self._reaped(status, usage)

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(no output)"

    def _reaped(self, status: int, usage: resource.struct_rusage) -> None:
        self.exit_code = os.waitstatus_to_exitcode(status)
        self.usage = usage
        # Popen must not wait for a pid that is already reaped.
        self._process.returncode = self.exit_code


def run_pipeline(round_: Round) -> Measurement:
    """Drain the input with `python app.py` until the last interval with data is published."""
    output = f"{round_.name}-out"
    health_port = free_port()
    # Created first, so the reader is assigned before the processor starts publishing.
    ensure_topic(round_.bootstrap, output, partitions=1)
    env = {
        **os.environ,
        **shipped.PIPELINE_ENV,
        "KAFKA_BOOTSTRAP_SERVERS": round_.bootstrap,
        "INPUT_TOPIC": round_.dataset.topic,
        "OUTPUT_TOPIC": output,
        "DLQ_TOPIC": f"{round_.name}-dlq",
        "CONSUMER_GROUP": round_.name,
        "CLOCK_TOPIC": f"{round_.name}-clock",
        "STATE_DIR": str(round_.workdir / "state"),
        "AUTO_OFFSET_RESET": "earliest",
        "LOG_LEVEL": "WARNING",
        "HEALTH_PORT": str(health_port),
        "HEALTH_HOST": "127.0.0.1",
    }
    reader = _reader(round_.bootstrap, output)
    deadline = round_.new_deadline()
    try:
        child = Child([sys.executable, "app.py"], env, round_.workdir / "pipeline.log")
        try:
            first_at, summaries = _read_summaries(
                reader, child, round_.dataset, deadline, health_port
            )
            wall_s = time.time() - first_at
            child.stop()
        finally:
            child.kill()
    finally:
        reader.close()
    if child.exit_code != 0:
        raise ContestantError(
            f"the pipeline exited with {child.exit_code} after SIGTERM\n{child.log_tail()}"
        )
    return _measurement(PIPELINE, round_, wall_s, child, summaries)


def run_baseline(round_: Round) -> Measurement:
    out = round_.workdir / "baseline.jsonl"
    timing = round_.workdir / "baseline-timing.json"
    argv = [
        sys.executable,
        "-m",
        "bench.baseline",
        "--bootstrap-servers",
        round_.bootstrap,
        "--topic",
        round_.dataset.topic,
        "--out",
        str(out),
        "--timing",
        str(timing),
        "--window-seconds",
        str(shipped.WINDOW_SECONDS),
        "--grace-seconds",
        str(shipped.GRACE_SECONDS),
        "--max-message-bytes",
        str(shipped.MAX_MESSAGE_BYTES),
    ]
    deadline = round_.new_deadline()
    child = Child(argv, os.environ, round_.workdir / "baseline.log")
    try:
        if not child.wait(deadline):
            raise ContestantError(f"the baseline did not finish in time\n{child.log_tail()}")
    finally:
        child.kill()
    if child.exit_code != 0:
        raise ContestantError(f"the baseline exited with {child.exit_code}\n{child.log_tail()}")
    summaries = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    times = orjson.loads(timing.read_bytes())
    wall_s = times["done_at"] - times["first_message_at"]
    return _measurement(BASELINE, round_, wall_s, child, summaries)


def _reader(bootstrap: str, topic: str) -> Consumer:
    """The output topic as a downstream user reads it: committed transactions only."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-reader-{os.urandom(6).hex()}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    return consumer


def _read_summaries(
    reader: Consumer, child: Child, dataset: Dataset, deadline: float, health_port: int
) -> tuple[float, list[dict[str, Any]]]:
    """When the pipeline processed its first record (epoch s, as its readiness endpoint first
    says so), and the summaries up to the one of the last interval with data. After it the
    processor goes on publishing empty intervals on its wall clock; those are not part of the
    drain."""
    last_start_s = dataset.last_interval_start_s
    summaries: list[dict[str, Any]] = []
    first_at: float | None = None
    while True:
        if first_at is None and probe(health_port, "ready")[0]:
            first_at = time.time()
        message = reader.poll(POLL_SECONDS)
        if message is None:
            if child.poll():
                raise ContestantError(
                    f"the pipeline exited with {child.exit_code} before publishing the last "
                    f"interval ({len(summaries)} summaries read)\n{child.log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise ContestantError(
                    f"the pipeline did not publish the interval starting at {last_start_s} "
                    f"in time ({len(summaries)} summaries read)\n{child.log_tail()}"
                )
            continue
        error = message.error()
        if error is not None:
            raise KafkaException(error)
        try:
            summary = orjson.loads(message.value())
            start_s = summary["timestamp_start"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            raise ContestantError(f"unreadable summary: {message.value()!r}") from None
        summaries.append(summary)
        if start_s >= last_start_s:
            if first_at is None:
                raise ContestantError("the pipeline published before it reported ready")
            return first_at, summaries


def _measurement(
    contestant: str, round_: Round, wall_s: float, child: Child, summaries: list[dict[str, Any]]
) -> Measurement:
    usage = child.usage
    assert usage is not None, "measured only after the child was reaped"
    return Measurement(
        contestant=contestant,
        round=round_.number,
        events=round_.dataset.events,
        wall_s=wall_s,
        cpu_s=float(usage.ru_utime + usage.ru_stime),
        peak_rss_kib=int(usage.ru_maxrss),
        summaries=summaries,
    )
