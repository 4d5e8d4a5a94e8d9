"""One benchmark run: pre-load both sizes, drain them round by round with every contestant in
turn (so slow drifts of a shared machine hit all alike), report, and remove what the run made.
CPU per event is a slope, (CPU of the large drain - of the small one) / (their difference in
size), so what a process spends once cancels out; events/s and peak RSS are the large drain's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from argparse import Namespace
from collections.abc import Sequence
from concurrent.futures import Future
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any, Final, NamedTuple

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from .contestants import SESSION_SECONDS, Child, Round, run_pipeline, run_reference
from .dataset import preload

PIPELINE: Final = "pipeline"
BARE_LOOP: Final = "bare_loop"
QUIX_FLOOR: Final = "quix_floor"
US_PER_S: Final = 1_000_000
ADMIN_TIMEOUT_SECONDS: Final = 30.0


@dataclass(frozen=True)
class Drain:
    contestant: str
    round: int
    events: int
    wall_s: float
    processes: list[Child]  # the pipeline's instances, or the one process

    @property
    def cpu_s(self) -> float:
        return sum(process.cpu_s for process in self.processes)

    @property
    def peak_rss_mib(self) -> float:
        return max(process.peak_rss_mib for process in self.processes)  # each has its own


class Figures(NamedTuple):
    cpu_us_per_event: float
    events_per_s: float
    peak_rss: float  # MiB


def run_benchmark(connection: dict[str, Any], args: Namespace) -> None:
    # Every topic and group of the run carries `marker`: nothing is shared with another run or
    # a demo, and the clean-up finds it all.
    marker = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{os.urandom(3).hex()}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{marker}-"))
    contestants = [PIPELINE, BARE_LOOP, *([QUIX_FLOOR] if args.quix_floor else [])]
    names: list[str] = []
    drains: list[Drain] = []
    try:
        sizes = (args.small_events, args.events)
        datasets = [preload(connection, f"{marker}-input-{n}", n, args.partitions) for n in sizes]
        print(f"partitions: {args.partitions}, pipeline instances: {args.instances}", flush=True)
        for number in range(1, args.rounds + 1):
            for dataset in datasets:
                for contestant in contestants:
                    names.append(f"{marker}-r{number}-{dataset.events}-{contestant}")
                    (workdir / names[-1]).mkdir()
                    round_ = Round(connection, dataset, names[-1], workdir / names[-1])
                    if contestant == PIPELINE:
                        wall_s, children = run_pipeline(round_, args.instances)
                    else:
                        wall_s, children = run_reference(round_, contestant)
                    drains.append(Drain(contestant, number, dataset.events, wall_s, children))
                    print(drain_line(drains[-1]), flush=True)
        print(f"{len(drains)} drains read every message; the pipeline's equal the baseline")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.bootstrap_servers:  # a local broker goes with all it holds
            delete_run(connection, marker, names)
    report(drains, contestants)


def drain_line(drain: Drain) -> str:
    line = (
        f"round {drain.round} {drain.events:>9,} {drain.contestant:<10}  "
        f"wall {drain.wall_s:7.2f} s  {drain.events / drain.wall_s:>9,.0f} events/s  "
        f"{drain.cpu_s * US_PER_S / drain.events:6.2f} us/event CPU  "
        f"peak RSS {drain.peak_rss_mib:6.1f} MiB"
    )
    if len(drain.processes) > 1:  # each instance's share: together they make the whole
        cpu = " / ".join(f"{p.cpu_s * US_PER_S / drain.events:.2f}" for p in drain.processes)
        rss = " / ".join(f"{p.peak_rss_mib:.1f}" for p in drain.processes)
        line += f"  (per instance: {cpu} us/event, {rss} MiB)"
    return line


def medians(drains: Sequence[Drain], contestant: str) -> Figures:
    """The contestant's figures of every round, by slope, and their medians."""
    per_round = []
    for number in sorted({drain.round for drain in drains}):
        both = [d for d in drains if d.contestant == contestant and d.round == number]
        small, large = sorted(both, key=lambda drain: drain.events)
        cpu_us = (large.cpu_s - small.cpu_s) * US_PER_S / (large.events - small.events)
        per_round.append(Figures(cpu_us, large.events / large.wall_s, large.peak_rss_mib))
    return Figures(*(median(column) for column in zip(*per_round, strict=True)))


def report(drains: Sequence[Drain], contestants: Sequence[str]) -> None:
    """A compact table of the medians, then the line of ratios: always the last, for scripts."""
    figures = {name: medians(drains, name) for name in contestants}
    sizes = sorted({drain.events for drain in drains})
    print(f"\nper event: slope between {sizes[0]:,} and {sizes[-1]:,} events, medians of rounds")
    print("contestant    CPU us/event  x bare loop   events/s  peak RSS MiB")
    pipeline, bare = figures[PIPELINE], figures[BARE_LOOP]
    for name, (cpu_us, events_per_s, rss_mib) in figures.items():
        times = cpu_us / bare.cpu_us_per_event
        print(f"{name:<12}{cpu_us:>14.2f}{times:>12.2f}x{events_per_s:>11,.0f}{rss_mib:>14.1f}")

    def ratios(reference: Figures, *fields: str) -> str:
        return "  ".join(
            f"{field} {getattr(pipeline, field) / getattr(reference, field):.2f}x"
            for field in fields
        )

    line = f"ratio pipeline/bare_loop: {ratios(bare, 'cpu_us_per_event', 'peak_rss')}"
    if QUIX_FLOOR in figures:
        floor = ratios(figures[QUIX_FLOOR], "cpu_us_per_event", "events_per_s")
        line += f" | pipeline/quix_floor: {floor}"
    print(line, flush=True)


def delete_run(connection: dict[str, Any], marker: str, groups: list[str]) -> None:
    """Best effort: remove every topic named with `marker` (inputs, outputs, the pipeline's and
    the Quix floor's internal topics) and the run's consumer groups. The pipeline's members are
    static: their group can go only once their session has expired."""
    session_s = SESSION_SECONDS
    print(f"removing the run's topics and groups (the last within {session_s} s)", flush=True)
    admin = AdminClient(connection)
    with suppress(KafkaException):  # leftovers under unique names harm nothing
        topics = [t for t in admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).topics if marker in t]
        for future in admin.delete_topics(topics).values() if topics else []:
            with suppress(KafkaException, TimeoutError):
                future.result(ADMIN_TIMEOUT_SECONDS)
        give_up = time.monotonic() + session_s + 10
        while groups and time.monotonic() < give_up:
            futures = admin.delete_consumer_groups(groups)
            groups = [group for group, future in futures.items() if _not_empty(future)]
            time.sleep(1 if groups else 0)


def _not_empty(future: Future[None]) -> bool:
    """Whether a group's deletion failed for members still in it (on any other, it is let be)."""
    try:
        future.result(ADMIN_TIMEOUT_SECONDS)
    except KafkaException as exc:
        return bool(exc.args[0].code() == KafkaError.NON_EMPTY_GROUP)
    return False
