"""The contestants, each run as a child process and measured the same way.

* the pipeline as shipped: M processes of `python app.py` (one by default), configured only
  through their environment, sharing a fresh consumer group, output and dead-letter topics per
  round, each with its own instance id, empty state directory and health port;
* the bare loop: one `python -m bench.bare_loop` process, the least a Python consumer can do
  with the data (see that module);
* on request, the Quix floor: one `python -m bench.quix_floor` process, the least Quix Streams
  application with the pipeline's window (see that module).

CPU time and peak RSS come from the kernel's account of each child (`os.wait4`), so they cover
the whole process, start-up and shutdown included, and nothing of the harness. Wall time runs
from the first message processed to the last summary: for the pipeline, from the first
readiness endpoint answering (an instance turns ready on its first processed record) to the
arrival of the summary of the last interval with data; for the others, from their first
message to their result being written, as they report it. Start-up (imports, topic
creation, group join) is thus left out of the rate, as it would be of a long-running processor.
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

from devtools.local_broker import free_port
from login_stream.generator import ensure_topic
from login_stream.health import probe

from . import shipped
from .broker import Connection
from .dataset import Dataset

REPO: Final = Path(__file__).resolve().parent.parent
PIPELINE: Final = "pipeline"
BARE_LOOP: Final = "bare_loop"
QUIX_FLOOR: Final = "quix_floor"
STOP_TIMEOUT_SECONDS: Final = 30.0
WAIT_STEP_SECONDS: Final = 0.01
POLL_SECONDS: Final = 0.1
LOG_TAIL_LINES: Final = 30
KIB_PER_MIB: Final = 1024
US_PER_S: Final = 1_000_000
# A deadline only to turn a hang into an error: a minute of start-up, then 0.5 ms per event
# (the pipeline needs about 0.03 ms of CPU per event).
BASE_TIMEOUT_SECONDS: Final = 60.0
TIMEOUT_SECONDS_PER_EVENT: Final = 0.0005


class ContestantError(Exception):
    """A contestant failed, hung or published something unreadable; message for the user."""


@dataclass(frozen=True)
class Usage:
    """One process's account, from the kernel when it was reaped."""

    cpu_s: float
    peak_rss_kib: int  # ru_maxrss is in KiB on Linux

    @property
    def peak_rss_mib(self) -> float:
        return self.peak_rss_kib / KIB_PER_MIB


@dataclass(frozen=True)
class Measurement:
    contestant: str
    round: int
    events: int
    wall_s: float
    processes: tuple[Usage, ...]  # the pipeline's instances in order, or the one process
    summaries: list[dict[str, Any]]

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def cpu_s(self) -> float:
        return sum(process.cpu_s for process in self.processes)

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_s * US_PER_S / self.events

    @property
    def peak_rss_mib(self) -> float:
        """The largest process's: each has its own memory."""
        return max(process.peak_rss_mib for process in self.processes)


@dataclass(frozen=True)
class Round:
    """What one run of one contestant gets: the data, the broker, a fresh working folder."""

    connection: Connection
    connection_file: Path  # the same as JSON, for the reference processes (secrets: mode 0600)
    dataset: Dataset
    number: int
    name: str  # unique per run and round: the pipeline's group and topics are named after it
    workdir: Path
    instances: int  # processes of the pipeline

    def new_deadline(self) -> float:
        timeout = BASE_TIMEOUT_SECONDS + TIMEOUT_SECONDS_PER_EVENT * self.dataset.events
        return time.monotonic() + timeout


class Child:
    """A child process whose resource usage is collected with `os.wait4` when it ends."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        # The caller's working directory, with its `.env` if it has one, as for the harness's
        # own clients; the benchmark's modules are found through the path.
        env = {
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])),
        }
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        self.exit_code: int | None = None
        self.usage: Usage | None = None

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

    def terminate(self) -> None:
        """SIGTERM: the processor's graceful shutdown."""
        if not self.poll():
            self._process.send_signal(signal.SIGTERM)

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
        self.usage = Usage(usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
        # Popen must not wait for a pid that is already reaped.
        self._process.returncode = self.exit_code


def run_pipeline(round_: Round) -> Measurement:
    """Drain the input with `python app.py` until the last interval with data is published."""
    output = f"{round_.name}-out"
    # Created first, so the reader is assigned before the processor starts publishing.
    ensure_topic(round_.connection, output, partitions=1)
    env = {
        **os.environ,
        **shipped.PIPELINE_ENV,
        "KAFKA_BOOTSTRAP_SERVERS": round_.connection["bootstrap.servers"],
        # The rest of the security settings come from the environment, as the benchmark's
        # own clients read them (see `broker.secured`); the local broker is plaintext.
        "KAFKA_SECURITY_PROTOCOL": round_.connection.get("security.protocol", "PLAINTEXT").upper(),
        "INPUT_TOPIC": round_.dataset.topic,
        "OUTPUT_TOPIC": output,
        "DLQ_TOPIC": f"{round_.name}-dlq",
        "CONSUMER_GROUP": round_.name,
        "CLOCK_TOPIC": f"{round_.name}-clock",
        "AUTO_OFFSET_RESET": "earliest",
        "LOG_LEVEL": "WARNING",
        "HEALTH_HOST": "127.0.0.1",
    }
    health_ports: list[int] = []
    while len(health_ports) < round_.instances:
        # Nothing listens on a free port yet, so the same one could come up twice.
        if (port := free_port()) not in health_ports:
            health_ports.append(port)
    reader = _reader(round_.connection, output)
    deadline = round_.new_deadline()
    children: list[Child] = []
    try:
        for instance, port in enumerate(health_ports):
            own = {
                "PROCESSOR_INSTANCE_ID": str(instance),
                "STATE_DIR": str(round_.workdir / f"state-{instance}"),
                "HEALTH_PORT": str(port),
            }
            log = round_.workdir / f"pipeline-{instance}.log"
            children.append(Child([sys.executable, str(REPO / "app.py")], {**env, **own}, log))
        first_at, summaries = _read_summaries(
            reader, children, round_.dataset, deadline, health_ports
        )
        wall_s = time.time() - first_at
        _stop(children)
    finally:
        for child in children:
            child.kill()
        reader.close()
    for child in children:
        if child.exit_code != 0:
            raise ContestantError(
                f"{child.log_path.name}: the pipeline exited with {child.exit_code} after "
                f"SIGTERM\n{child.log_tail()}"
            )
    return _measurement(PIPELINE, round_, wall_s, children, summaries)


def _stop(children: Sequence[Child]) -> None:
    """Stop every instance at once, gracefully: one after another, the last ones would take
    over the partitions of the first and spend CPU on it."""
    for child in children:
        child.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        if not child.wait(deadline):
            raise ContestantError(
                f"{child.log_path.name}: ignored SIGTERM for {STOP_TIMEOUT_SECONDS:.0f}s"
            )


def run_bare_loop(round_: Round) -> Measurement:
    """The yardstick: it publishes nothing to compare, so only the messages it read are
    checked."""
    return _run_reference(round_, BARE_LOOP, "bench.bare_loop")


def run_quix_floor(round_: Round) -> Measurement:
    """The framework's floor (see `bench.quix_floor`): checked like the bare loop."""
    state_dir = str(round_.workdir / "quix-floor-state")
    grace = str(shipped.GRACE_SECONDS)
    return _run_reference(
        round_, QUIX_FLOOR, "bench.quix_floor", "--grace-seconds", grace, "--state-dir", state_dir
    )


def _run_reference(round_: Round, label: str, module: str, *args: str) -> Measurement:
    """Run `python -m module` on the round's input to its end; its wall time runs from its
    first message to its result, as it reports them."""
    out, timing = round_.workdir / f"{label}.out", round_.workdir / f"{label}-timing.json"
    argv = [sys.executable, "-m", module, "--connection", str(round_.connection_file)]
    argv += ["--topic", round_.dataset.topic, "--out", str(out), "--timing", str(timing)]
    argv += ["--window-seconds", str(shipped.WINDOW_SECONDS), *args]
    deadline = round_.new_deadline()
    child = Child(argv, os.environ, round_.workdir / f"{label}.log")
    try:
        if not child.wait(deadline):
            raise ContestantError(f"the {label} did not finish in time\n{child.log_tail()}")
    finally:
        child.kill()
    if child.exit_code != 0:
        raise ContestantError(f"the {label} exited with {child.exit_code}\n{child.log_tail()}")
    read = orjson.loads(out.read_bytes())["read"]
    if read != round_.dataset.events:
        raise ContestantError(f"the {label} read {read} messages, not {round_.dataset.events}")
    times = orjson.loads(timing.read_bytes())
    return _measurement(label, round_, times["done_at"] - times["first_message_at"], [child], [])


def _reader(connection: Connection, topic: str) -> Consumer:
    """The output topic as a downstream user reads it: committed transactions only."""
    consumer = Consumer(
        {
            **connection,
            "group.id": f"bench-reader-{os.urandom(6).hex()}",
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    return consumer


def _read_summaries(
    reader: Consumer,
    children: Sequence[Child],
    dataset: Dataset,
    deadline: float,
    health_ports: Sequence[int],
) -> tuple[float, list[dict[str, Any]]]:
    """When the pipeline processed its first record (epoch s, as the first readiness endpoint
    says so), and the summaries up to the one of the last interval with data. After it the
    processor goes on publishing empty intervals on its wall clock; those are not part of the
    drain."""
    last_start_s = dataset.last_interval_start_s
    summaries: list[dict[str, Any]] = []
    first_at: float | None = None
    while True:
        if first_at is None and any(probe(port, "ready")[0] for port in health_ports):
            first_at = time.time()
        message = reader.poll(POLL_SECONDS)
        if message is None:
            for child in children:
                if child.poll():
                    raise ContestantError(
                        f"{child.log_path.name}: the pipeline exited with {child.exit_code} "
                        f"before publishing the last interval ({len(summaries)} summaries "
                        f"read)\n{child.log_tail()}"
                    )
            if time.monotonic() >= deadline:
                raise ContestantError(
                    f"the pipeline did not publish the interval starting at {last_start_s} "
                    f"in time ({len(summaries)} summaries read)\n"
                    + "\n".join(f"{c.log_path.name}:\n{c.log_tail()}" for c in children)
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
    contestant: str,
    round_: Round,
    wall_s: float,
    children: Sequence[Child],
    summaries: list[dict[str, Any]],
) -> Measurement:
    return Measurement(
        contestant=contestant,
        round=round_.number,
        events=round_.dataset.events,
        wall_s=wall_s,
        processes=tuple(child.usage for child in children if child.usage is not None),
        summaries=summaries,
    )
