"""One benchmark run: pre-load the data once, then alternate the contestants round by round,
checking every drain against the baseline before its figures are kept; last, time the merge
step alone over as many partials as a drain produced."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from rich.console import Console

from . import check
from .broker import delete_run
from .contestants import BASELINE, Measurement, Round, run_baseline, run_pipeline
from .dataset import preload
from .merge_cost import merge_cost
from .report import print_report, run_line

Contestant = Callable[[Round], Measurement]
# Alternating, so slow drifts of a shared machine hit both contestants alike.
ORDER: tuple[Contestant, ...] = (run_pipeline, run_baseline)


class MismatchError(Exception):
    """The pipeline's summaries differ from the baseline's; the message shows the first."""


def run_benchmark(
    bootstrap: str, events: int, rounds: int, partitions: int, instances: int, console: Console
) -> None:
    # Every topic and group of this run carries `marker`, so nothing is shared with another
    # run or a demo, and the clean-up can find it all.
    marker = f"bench-{time.strftime('%Y%m%d%H%M%S')}-{os.urandom(3).hex()}"
    workdir = Path(tempfile.mkdtemp(prefix=f"{marker}-"))
    groups: list[str] = []
    try:
        dataset = preload(bootstrap, f"{marker}-input", events, partitions, console)
        console.print(
            f"{events:,} messages in {dataset.topic}; last interval with data starts at "
            f"{dataset.last_interval_start_s}"
        )
        console.print(
            f"input partitions: {partitions}, pipeline instances: {instances}, "
            "baseline processes: 1"
        )
        runs: list[Measurement] = []
        reference: list[dict[str, object]] | None = None
        for number in range(1, rounds + 1):
            for contestant in ORDER:
                name = f"{marker}-r{number}-{contestant.__name__.removeprefix('run_')}"
                round_workdir = workdir / name
                round_workdir.mkdir()
                groups.append(name)
                with console.status(f"round {number}/{rounds}: {name} ..."):
                    run = contestant(
                        Round(bootstrap, dataset, number, name, round_workdir, instances)
                    )
                run = _checked(run, dataset.last_interval_start_s, events, reference)
                if reference is None and run.contestant == BASELINE:
                    reference = run.summaries
                    # The pipeline ran first; check it now that there is a reference.
                    for earlier in runs:
                        _checked(earlier, dataset.last_interval_start_s, events, reference)
                runs.append(run)
                console.print(run_line(run), highlight=False, soft_wrap=True)
        console.print(f"all {len(runs)} drains equal the baseline and count {events:,} messages")
        assert reference is not None, "every round runs the baseline"
        print_report(console, runs, merge_cost(reference, partitions, events, rounds))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        delete_run(bootstrap, marker, groups)


def _checked(
    run: Measurement,
    last_start_s: int,
    events: int,
    reference: list[dict[str, object]] | None,
) -> Measurement:
    """`run` with its summaries cut to the intervals with data, once they match `reference`
    (when there is one yet) and count every message."""
    summaries = check.with_data(run.summaries, last_start_s)
    label = f"{run.contestant} (round {run.round})"
    problem = check.problems(
        label, summaries, summaries if reference is None else reference, events
    )
    if problem is not None:
        raise MismatchError(problem)
    return replace(run, summaries=summaries)
