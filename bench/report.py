"""The printed results: the figures per event of each contestant, and the ratios (each run's
own line is printed as it ends).

Figures per event come from the slope between the two sizes each contestant drained in the
same round: CPU per event is the extra CPU of the large drain over the small one, divided by
the extra events, so start-up and shutdown cancel out. Events/s are those of the large drain,
whose wall time leaves start-up out already (see `contestants`), and peak RSS is the large
drain's. Each figure is the median over the rounds.

With several pipeline instances, CPU per event is that of all instances together; each
instance's share and each instance's peak RSS are shown beside it, and the peak RSS compared
with the references is that of the largest instance (each process has its own memory).
The last line printed is always the single line of ratios to the references, for scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from rich.console import Console
from rich.table import Table

from .contestants import BARE_LOOP, PIPELINE, QUIX_FLOOR, US_PER_S, Measurement

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

    @classmethod
    def by_slope(cls, small: Measurement, large: Measurement) -> Figures:
        """The cost of the events the large drain read beyond the small one."""
        extra = large.events - small.events
        return cls(
            large.events_per_s,
            (large.cpu_s - small.cpu_s) * US_PER_S / extra,
            large.peak_rss_mib,
            tuple(
                (big.cpu_s - little.cpu_s) * US_PER_S / extra
                for little, big in zip(small.processes, large.processes, strict=True)
            ),
            large.peak_rss_mib_each,
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


def medians(figures: Sequence[Figures]) -> Figures:
    processes = range(len(figures[0].cpu_us_per_event_each))
    return Figures(
        events_per_s=median(f.events_per_s for f in figures),
        cpu_us_per_event=median(f.cpu_us_per_event for f in figures),
        peak_rss_mib=median(f.peak_rss_mib for f in figures),
        cpu_us_per_event_each=tuple(
            median(f.cpu_us_per_event_each[i] for f in figures) for i in processes
        ),
        peak_rss_mib_each=tuple(median(f.peak_rss_mib_each[i] for f in figures) for i in processes),
    )


def slopes(runs: Sequence[Measurement], contestant: str) -> list[Figures]:
    """Per round, the contestant's figures by slope between its smallest and largest drain."""
    figures = []
    for number in sorted({run.round for run in runs}):
        drains = sorted(
            (r for r in runs if r.contestant == contestant and r.round == number),
            key=lambda r: r.events,
        )
        figures.append(Figures.by_slope(drains[0], drains[-1]))
    return figures


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


def ratio_line(pipeline: Figures, bare_loop: Figures, quix_floor: Figures | None) -> str:
    line = (
        "ratio pipeline/bare_loop: "
        f"cpu_us_per_event {pipeline.cpu_us_per_event / bare_loop.cpu_us_per_event:.2f}x  "
        f"peak_rss {pipeline.peak_rss_mib / bare_loop.peak_rss_mib:.2f}x"
    )
    if quix_floor is not None:
        line += (
            " | pipeline/quix_floor: "
            f"cpu_us_per_event {pipeline.cpu_us_per_event / quix_floor.cpu_us_per_event:.2f}x  "
            f"events_per_s {pipeline.events_per_s / quix_floor.events_per_s:.2f}x"
        )
    return line


def print_report(console: Console, runs: Sequence[Measurement]) -> None:
    # Per-instance columns only when there is more than one instance to tell apart (each
    # run's own figures were printed as it ended, by `run_line`).
    per_instance = PER_INSTANCE_HEADERS if any(len(run.processes) > 1 for run in runs) else ()
    present = {run.contestant for run in runs}
    by_contestant = {
        name: medians(slopes(runs, name))
        for name in (PIPELINE, QUIX_FLOOR, BARE_LOOP)
        if name in present
    }
    bare_loop_cpu = by_contestant[BARE_LOOP].cpu_us_per_event
    sizes = sorted({run.events for run in runs})
    summary = Table(
        title=f"Per event: slope between {sizes[0]:,} and {sizes[-1]:,} events, "
        "medians of the rounds",
        title_justify="left",
    )
    summary.add_column("contestant")
    for header in (*HEADERS, "CPU x bare loop", *per_instance):
        summary.add_column(header, justify="right")
    for name, figures in by_contestant.items():
        summary.add_row(
            name,
            *figures.cells(),
            f"{figures.cpu_us_per_event / bare_loop_cpu:.2f}x",
            *(figures.per_instance_cells() if per_instance else ()),
        )
    console.print(summary)
    # Plain print: rich would wrap the line at the terminal width.
    ratios = ratio_line(
        by_contestant[PIPELINE], by_contestant[BARE_LOOP], by_contestant.get(QUIX_FLOOR)
    )
    print(ratios, flush=True)
