"""The printed results: one row per run, the medians per contestant, the merge's own cost, and
the ratios.

With several pipeline instances, CPU per event is that of all instances together; each
instance's share and each instance's peak RSS are shown beside it, and the peak RSS compared
with the baseline's is that of the largest instance (each process has its own memory).
The last line printed is always the single line of ratios pipeline/baseline, for scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from rich.console import Console
from rich.table import Table

from .contestants import BASELINE, PIPELINE, Measurement
from .merge_cost import MergeCost

HEADERS = ("events/s", "CPU us/event", "peak RSS MiB")
PER_INSTANCE_HEADERS = ("CPU us/event per instance", "peak RSS MiB per instance")


@dataclass(frozen=True)
class Figures:
    events_per_s: float
    cpu_us_per_event: float
    peak_rss_mib: float
    cpu_us_per_event_each: tuple[float, ...]
    peak_rss_mib_each: tuple[float, ...]

    @classmethod
    def of(cls, run: Measurement) -> Figures:
        return cls(
            run.events_per_s,
            run.cpu_us_per_event,
            run.peak_rss_mib,
            run.cpu_us_per_event_each,
            run.peak_rss_mib_each,
        )

    def cells(self) -> tuple[str, str, str]:
        return (
            f"{self.events_per_s:,.0f}",
            f"{self.cpu_us_per_event:.2f}",
            f"{self.peak_rss_mib:.1f}",
        )

    def per_instance_cells(self) -> tuple[str, str]:
        return (
            " / ".join(f"{cpu:.2f}" for cpu in self.cpu_us_per_event_each),
            " / ".join(f"{rss:.1f}" for rss in self.peak_rss_mib_each),
        )


def medians(runs: Sequence[Measurement]) -> Figures:
    processes = range(len(runs[0].processes))
    return Figures(
        events_per_s=median(run.events_per_s for run in runs),
        cpu_us_per_event=median(run.cpu_us_per_event for run in runs),
        peak_rss_mib=median(run.peak_rss_mib for run in runs),
        cpu_us_per_event_each=tuple(
            median(run.cpu_us_per_event_each[i] for run in runs) for i in processes
        ),
        peak_rss_mib_each=tuple(
            median(run.peak_rss_mib_each[i] for run in runs) for i in processes
        ),
    )


def run_line(run: Measurement) -> str:
    line = (
        f"round {run.round} {run.contestant:<8}  wall {run.wall_s:7.2f} s  "
        f"{run.events_per_s:>10,.0f} events/s  {run.cpu_us_per_event:6.2f} us/event CPU  "
        f"peak RSS {run.peak_rss_mib:6.1f} MiB"
    )
    if len(run.processes) > 1:
        cpu, rss = Figures.of(run).per_instance_cells()
        line += f"  (per instance: {cpu} us/event, {rss} MiB)"
    return line


def merge_line(cost: MergeCost) -> str:
    return (
        f"merge alone: merge_partial over {cost.partials:,} partials in interval order "
        f"({cost.partitions} per interval x {cost.intervals:,} intervals): "
        f"{cost.us_per_partial:.2f} us/partial, "
        f"{cost.us_per_event:.3f} us/event"
    )


def ratio_line(pipeline: Figures, baseline: Figures) -> str:
    return (
        "ratio pipeline/baseline: "
        f"cpu_us_per_event {pipeline.cpu_us_per_event / baseline.cpu_us_per_event:.2f}x  "
        f"events_per_s {pipeline.events_per_s / baseline.events_per_s:.2f}x  "
        f"peak_rss {pipeline.peak_rss_mib / baseline.peak_rss_mib:.2f}x"
    )


def print_report(console: Console, runs: Sequence[Measurement], merge: MergeCost) -> None:
    # Per-instance columns only when there is more than one instance to tell apart.
    per_instance = PER_INSTANCE_HEADERS if any(len(run.processes) > 1 for run in runs) else ()
    rounds = Table(title="Every run", title_justify="left")
    for column in ("round", "contestant", "wall s", "CPU s", *HEADERS, *per_instance):
        rounds.add_column(column, justify="left" if column == "contestant" else "right")
    rounds.add_column("intervals", justify="right")
    for run in runs:
        figures = Figures.of(run)
        rounds.add_row(
            str(run.round),
            run.contestant,
            f"{run.wall_s:.2f}",
            f"{run.cpu_s:.2f}",
            *figures.cells(),
            *(figures.per_instance_cells() if per_instance else ()),
            str(len(run.summaries)),
        )
    console.print(rounds)

    by_contestant = {
        name: medians([run for run in runs if run.contestant == name])
        for name in (PIPELINE, BASELINE)
    }
    summary = Table(title="Medians", title_justify="left")
    summary.add_column("contestant")
    for header in (*HEADERS, *per_instance):
        summary.add_column(header, justify="right")
    for name, figures in by_contestant.items():
        summary.add_row(
            name, *figures.cells(), *(figures.per_instance_cells() if per_instance else ())
        )
    console.print(summary)
    console.print(merge_line(merge), highlight=False, soft_wrap=True)
    # Plain print: rich would wrap the line at the terminal width.
    print(ratio_line(by_contestant[PIPELINE], by_contestant[BASELINE]), flush=True)
