"""One benchmark run: pre-load the data once per size, then alternate the contestants round by
round, checking every pipeline drain against the baseline before its figures are kept.

Every contestant drains two sizes of input in every round. The report takes its CPU per event
from the difference between them (the slope), so what a process spends once, on imports,
connecting, creating topics and shutting down, cancels out.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console

from . import check
from .broker import Connection, delete_run
from .contestants import (
    PIPELINE,
    Measurement,
    Round,
    run_bare_loop,
    run_pipeline,
    run_quix_floor,
)
from .dataset import Dataset, preload
from .report import print_report, run_line

Contestant = Callable[[Round], Measurement]
# Alternating, so slow drifts of a shared machine hit every contestant alike.
ORDER: tuple[Contestant, ...] = (run_pipeline, run_bare_loop)


class MismatchError(Exception):
    """The pipeline's summaries differ from the baseline; the message shows the first."""


def run_benchmark(
    connection: Connection,
    sizes: tuple[int, int],
    rounds: int,
    partitions: int,
    instances: int,
    quix_floor: bool,
    console: Console,
) -> None:
    # Every topic and group of this run carries `marker`, so nothing is shared with another
    # run or a demo, and the clean-up can find it all.
    marker = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{os.urandom(3).hex()}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{marker}-"))
    groups: list[str] = []
    try:
        datasets = [
            preload(connection, f"{marker}-input-{events}", events, partitions, console)
            for events in sizes
        ]
        console.print(
            f"input partitions: {partitions}, pipeline instances: {instances}, "
            "other contestants: 1 process"
        )
        contestants = (*ORDER, run_quix_floor) if quix_floor else ORDER
        connection_file = workdir / "connection.json"
        connection_file.touch(mode=0o600)
        connection_file.write_bytes(orjson.dumps(connection))
        runs: list[Measurement] = []
        for number in range(1, rounds + 1):
            for dataset in datasets:
                for contestant in contestants:
                    name = (
                        f"{marker}-r{number}-{dataset.events}-"
                        f"{contestant.__name__.removeprefix('run_')}"
                    )
                    round_workdir = workdir / name
                    round_workdir.mkdir()
                    groups.append(name)
                    with console.status(f"round {number}/{rounds}: {name} ..."):
                        run = contestant(
                            Round(
                                connection,
                                connection_file,
                                dataset,
                                number,
                                name,
                                round_workdir,
                                instances,
                            )
                        )
                    if run.contestant == PIPELINE:
                        run = _checked(run, dataset)
                    runs.append(run)
                    console.print(run_line(run), highlight=False, soft_wrap=True)
        console.print(
            f"all {len(runs)} drains read every message; every pipeline drain equals the baseline"
        )
        print_report(console, runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        delete_run(connection, marker, groups)


def _checked(run: Measurement, dataset: Dataset) -> Measurement:
    """`run` with its summaries cut to the intervals with data, once they equal the baseline
    and count every message."""
    summaries: list[dict[str, Any]] = check.with_data(run.summaries, dataset.last_interval_start_s)
    label = f"{run.contestant} (round {run.round}, {run.events:,} events)"
    problem = check.problems(label, summaries, dataset.expected, dataset.events)
    if problem is not None:
        raise MismatchError(problem)
    return replace(run, summaries=summaries)
