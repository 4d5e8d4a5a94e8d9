"""The printed results: one row per run, the medians per contestant, and the ratios.

The last line printed is always the single line of ratios pipeline/baseline, for scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from rich.console import Console
from rich.table import Table

from .contestants import BASELINE, PIPELINE, Measurement

HEADERS = ("events/s", "CPU us/event", "peak RSS MiB")


@dataclass(frozen=True)
class Figures:
    events_per_s: float
    cpu_us_per_event: float
    peak_rss_mib: float

    def cells(self) -> tuple[str, str, str]:
        return (
            f"{self.events_per_s:,.0f}",
            f"{self.cpu_us_per_event:.2f}",
            f"{self.peak_rss_mib:.1f}",
        )


def medians(runs: Sequence[Measurement]) -> Figures:
    return Figures(
        events_per_s=median(run.events_per_s for run in runs),
        cpu_us_per_event=median(run.cpu_us_per_event for run in runs),
        peak_rss_mib=median(run.peak_rss_mib for run in runs),
    )


def run_line(run: Measurement) -> str:
    return (
        f"round {run.round} {run.contestant:<8}  wall {run.wall_s:7.2f} s  "
        f"{run.events_per_s:>10,.0f} events/s  {run.cpu_us_per_event:6.2f} us/event CPU  "
        f"peak RSS {run.peak_rss_mib:6.1f} MiB"
    )


def ratio_line(pipeline: Figures, baseline: Figures) -> str:
    return (
        "ratio pipeline/baseline: "
        f"cpu_us_per_event {pipeline.cpu_us_per_event / baseline.cpu_us_per_event:.2f}x  "
        f"events_per_s {pipeline.events_per_s / baseline.events_per_s:.2f}x  "
        f"peak_rss {pipeline.peak_rss_mib / baseline.peak_rss_mib:.2f}x"
    )


def print_report(console: Console, runs: Sequence[Measurement]) -> None:
    rounds = Table(title="Every run", title_justify="left")
    for column in ("round", "contestant", "wall s", "CPU s", *HEADERS, "intervals"):
        rounds.add_column(column, justify="left" if column == "contestant" else "right")
    for run in runs:
        figures = Figures(run.events_per_s, run.cpu_us_per_event, run.peak_rss_mib)
        rounds.add_row(
            str(run.round),
            run.contestant,
            f"{run.wall_s:.2f}",
            f"{run.cpu_s:.2f}",
            *figures.cells(),
            str(len(run.summaries)),
        )
    console.print(rounds)

    by_contestant = {
        name: medians([run for run in runs if run.contestant == name])
        for name in (PIPELINE, BASELINE)
    }
    summary = Table(title="Medians", title_justify="left")
    summary.add_column("contestant")
    for header in HEADERS:
        summary.add_column(header, justify="right")
    for name, figures in by_contestant.items():
        summary.add_row(name, *figures.cells())
    console.print(summary)
    # Plain print: rich would wrap the line at the terminal width.
    print(ratio_line(by_contestant[PIPELINE], by_contestant[BASELINE]), flush=True)
