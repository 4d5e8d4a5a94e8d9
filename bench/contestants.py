"""The contestants, run as child processes and measured alike: CPU time and peak RSS from
`os.wait4` on each (start-up and shutdown included, the harness excluded); wall time from the
first message processed (for the pipeline, its first readiness endpoint answering: an instance
turns ready on its first record) to the last result (its last data interval's summary, read
committed). The references get a job file and write a result file."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from subprocess import DEVNULL, Popen, TimeoutExpired
from typing import Any, Final

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bench import BenchError
from devtools.local_broker import free_port
from login_stream.generator import ensure_topic
from login_stream.health import probe

from .baseline import check
from .dataset import GRACE_SECONDS, WINDOW_SECONDS, Dataset, shipped

REPO: Final = Path(__file__).resolve().parent.parent
# The settings that shape the pipeline's output and cost, pinned to their defaults: a
# developer's `.env` (the processor reads it) cannot skew them.
PINNED: Final = [
    *("window_seconds", "window_grace_seconds", "emit_empty_intervals", "max_message_bytes"),
    *("event_time", "future_tolerance_seconds", "clock_tick_seconds"),
    *("processing_guarantee", "commit_interval_seconds"),
]
# The pipeline's members are static, so its group can be deleted only once their session has
# expired: the brokers' shortest allowed session (group.min.session.timeout.ms) keeps the
# clean-up short; heartbeats cost nothing measurable.
SESSION_SECONDS: Final = 6
# Every contestant starts through this small process: Linux keeps a process's peak RSS across
# exec, so one forked from the harness would count at least the harness's memory. Forked from
# here, it counts its own (any contestant takes more than this). It passes the exit code on
# and writes the contestant's CPU time (user + system) and ru_maxrss (KiB) from `os.wait4`.
LAUNCHER: Final = """
import os, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # meant for the contestant, in the same group
pid = os.fork()
if pid == 0:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
open(sys.argv[1], "w").write(f"{usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(code if (code := os.waitstatus_to_exitcode(status)) >= 0 else 128 - code)
"""
STOP_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class Round:
    """One drain by one contestant: the broker, the data, a unique name, a fresh folder."""

    connection: dict[str, Any]
    dataset: Dataset
    name: str  # carries the run's marker; names the consumer group and the pipeline's topics
    workdir: Path

    def deadline(self) -> float:
        # To turn a hang into an error: a minute, then 0.5 ms per event (the pipeline needs 0.03).
        return time.monotonic() + 60.0 + 0.0005 * self.dataset.events


class Child:
    """A contestant's process, started through `LAUNCHER` in a process group of its own."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.log, self._usage = log, log.with_suffix(".usage")
        path = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env = {**env, "PYTHONPATH": path}  # the benchmark's modules, from any folder
        argv = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(self._usage), *argv]
        with log.open("ab") as out:
            self.process = Popen(
                argv, env=env, stdin=DEVNULL, stdout=out, stderr=out, process_group=0
            )
        self.exit_code: int | None = None
        self.cpu_s = self.peak_rss_mib = 0.0

    def poll(self) -> bool:
        """True once the contestant has ended; its usage is known then."""
        if self.exit_code is None and self.process.poll() is not None:
            self.exit_code = self.process.returncode
            if self._usage.exists():  # not after a SIGKILL
                cpu_s, maxrss_kib = self._usage.read_text().split()
                self.cpu_s, self.peak_rss_mib = float(cpu_s), int(maxrss_kib) / 1024
        return self.exit_code is not None

    def wait(self, deadline: float) -> bool:
        """Wait until the contestant ends or `deadline` (monotonic) passes; True if it ended."""
        with suppress(TimeoutExpired):
            self.process.wait(max(0.0, deadline - time.monotonic()))
        return self.poll()

    def signal(self, number: int) -> None:
        if not self.poll():
            os.killpg(self.process.pid, number)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait()
        self.poll()


def failure(what: str, *children: Child) -> BenchError:
    """`what` went wrong, with the end of each child's log."""
    tails = [
        f"{child.log.name}:\n" + "\n".join(child.log.read_text(errors="replace").splitlines()[-30:])
        for child in children
    ]
    return BenchError("\n".join([what, *tails]))


def run_pipeline(round_: Round, instances: int) -> tuple[float, list[Child]]:
    """Drain the input with `python app.py` until the last interval with data is published,
    check the summaries against the baseline, and stop every instance gracefully."""
    output = f"{round_.name}-out"
    # Created first, so the reader is assigned before the processor starts publishing.
    ensure_topic(round_.connection, output, partitions=1)
    env = {
        **os.environ,
        **{name.upper(): str(shipped(name)) for name in PINNED},
        "CONSUMER_SESSION_TIMEOUT_SECONDS": str(SESSION_SECONDS),
        "KAFKA_BOOTSTRAP_SERVERS": round_.connection["bootstrap.servers"],
        # The other security settings come from the environment, as for the harness's clients;
        # the local broker is plaintext whatever the environment says.
        "KAFKA_SECURITY_PROTOCOL": round_.connection.get("security.protocol", "PLAINTEXT").upper(),
        "INPUT_TOPIC": round_.dataset.topic,
        "OUTPUT_TOPIC": output,
        "DLQ_TOPIC": f"{round_.name}-dlq",
        "CLOCK_TOPIC": f"{round_.name}-clock",
        "CONSUMER_GROUP": round_.name,
        "AUTO_OFFSET_RESET": "earliest",
        "LOG_LEVEL": "WARNING",
        "HEALTH_HOST": "127.0.0.1",
    }
    ports: list[int] = []
    while len(ports) < instances:
        # Nothing listens on a free port yet, so the same one could come up twice.
        if (port := free_port()) not in ports:
            ports.append(port)
    # The output as a downstream user reads it: committed transactions only.
    reader = Consumer(
        {
            **round_.connection,
            "group.id": f"{round_.name}-reader",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    reader.assign([TopicPartition(output, 0, OFFSET_BEGINNING)])
    children: list[Child] = []
    try:
        for instance, port in enumerate(ports):
            own = {
                "PROCESSOR_INSTANCE_ID": str(instance),
                "STATE_DIR": str(round_.workdir / f"state-{instance}"),
                "HEALTH_PORT": str(port),
            }
            log = round_.workdir / f"pipeline-{instance}.log"
            children.append(Child([sys.executable, str(REPO / "app.py")], {**env, **own}, log))
        first_at, summaries = _read_summaries(reader, children, round_, ports)
        wall_s = time.time() - first_at
        # All at once: one after another, the last would take over the partitions of the first
        # and spend CPU on them.
        for child in children:
            child.signal(signal.SIGTERM)  # the graceful shutdown
        stop_by = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in children:
            if not child.wait(stop_by) or child.exit_code != 0:
                stopped = f"exited with {child.exit_code}" if child.exit_code else "ran on"
                raise failure(f"on SIGTERM a pipeline {stopped}", child)
    finally:
        for child in children:
            child.kill()
        reader.close()
    last_start_s = round_.dataset.last_interval_start_s
    published = [summary for summary in summaries if summary["timestamp_start"] <= last_start_s]
    check(round_.name, published, round_.dataset.expected, round_.dataset.events)
    return wall_s, children


def _read_summaries(
    reader: Consumer, children: Sequence[Child], round_: Round, ports: Sequence[int]
) -> tuple[float, list[dict[str, Any]]]:
    """When the first instance turned ready (epoch s), and the summaries up to the last interval
    with data (the empty ones published after it on the processor's wall clock are not read)."""
    last_start_s, deadline = round_.dataset.last_interval_start_s, round_.deadline()
    summaries: list[dict[str, Any]] = []
    first_at: float | None = None
    while True:
        if first_at is None and any(probe(port, "ready")[0] for port in ports):
            first_at = time.time()
        message = reader.poll(0.1)
        if message is None:
            for child in children:
                if child.poll():
                    raise failure(f"a pipeline exited with {child.exit_code} mid-drain", child)
            if time.monotonic() >= deadline:
                raise failure("the pipeline did not publish the last interval in time", *children)
            continue
        if message.error() is not None:
            raise KafkaException(message.error())
        summaries.append(orjson.loads(message.value()))
        if summaries[-1]["timestamp_start"] >= last_start_s:
            if first_at is None:
                raise BenchError("the pipeline published before it reported ready")
            return first_at, summaries


def run_reference(round_: Round, contestant: str) -> tuple[float, list[Child]]:
    """Run `python -m bench.<contestant>` on the input to its end; only the number of messages
    it read is checked (it computes less than the pipeline: nothing to compare)."""
    job, result = round_.workdir / "job.json", round_.workdir / "result.json"
    job.touch(mode=0o600)  # the connection holds the secrets of a secured cluster
    job.write_bytes(
        orjson.dumps(
            {
                "connection": round_.connection,
                "topic": round_.dataset.topic,
                "ends": round_.dataset.ends,
                "group": round_.name,  # so the clean-up finds its group and changelog
                "window_s": WINDOW_SECONDS,
                "grace_s": GRACE_SECONDS,
                "state_dir": str(round_.workdir / "state"),
            }
        )
    )
    argv = [sys.executable, "-m", f"bench.{contestant}", str(job), str(result)]
    child = Child(argv, os.environ, round_.workdir / f"{contestant}.log")
    try:
        if not child.wait(round_.deadline()):
            raise failure(f"the {contestant} did not finish in time", child)
    finally:
        child.kill()
    if child.exit_code != 0:
        raise failure(f"the {contestant} exited with {child.exit_code}", child)
    done = orjson.loads(result.read_bytes())
    if done["read"] != round_.dataset.events:
        raise BenchError(f"the {contestant} read {done['read']} messages, not all of them")
    return done["done_at"] - done["first_at"], [child]
