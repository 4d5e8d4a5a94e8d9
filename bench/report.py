"""The printed results: each contestant's figures per event, medians over the rounds, and the
ratios to the references (each run's own line, per instance too, is printed as it ends).

CPU per event is the slope between the two sizes drained in the same round: the extra CPU of
the large drain over the small one, divided by the extra events, so start-up and shutdown
cancel out. Events/s and peak RSS are the large drain's; with several pipeline instances, CPU
is that of all of them and peak RSS that of the largest (each process has its own memory).
The last line printed is always the single line of ratios, for scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import NamedTuple

from rich.console import Console
from rich.table import Table

from .contestants import BARE_LOOP, PIPELINE, QUIX_FLOOR, US_PER_S, Measurement


class Figures(NamedTuple):
    events_per_s: float
    cpu_us_per_event: float
    peak_rss_mib: float


def by_slope(small: Measurement, large: Measurement) -> Figures:
    """The cost of the events the large drain read beyond the small one."""
    extra_cpu_us = (large.cpu_s - small.cpu_s) * US_PER_S
    return Figures(
        large.events_per_s, extra_cpu_us / (large.events - small.events), large.peak_rss_mib
    )


def medians(runs: Sequence[Measurement], contestant: str) -> Figures:
    """The contestant's figures by slope in every round, and their medians."""
    rounds = []
    for number in sorted({run.round for run in runs}):
        drains = sorted(
            (r for r in runs if r.contestant == contestant and r.round == number),
            key=lambda r: r.events,
        )
        rounds.append(by_slope(drains[0], drains[-1]))
    return Figures(*(median(column) for column in zip(*rounds, strict=True)))


def run_line(run: Measurement) -> str:
    line = (
        f"round {run.round} {run.contestant:<10}  wall {run.wall_s:7.2f} s  "
        f"{run.events / run.wall_s:>10,.0f} events/s  {run.cpu_us_per_event:6.2f} us/event CPU  "
        f"peak RSS {run.peak_rss_mib:6.1f} MiB"
    )
    if len(run.processes) > 1:
        cpu = " / ".join(f"{p.cpu_s * US_PER_S / run.events:.2f}" for p in run.processes)
        rss = " / ".join(f"{p.peak_rss_mib:.1f}" for p in run.processes)
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
    present = {run.contestant for run in runs}
    figures = {
        name: medians(runs, name) for name in (PIPELINE, QUIX_FLOOR, BARE_LOOP) if name in present
    }
    sizes = sorted({run.events for run in runs})
    table = Table(
        title=f"Per event: slope between {sizes[0]:,} and {sizes[-1]:,} events, "
        "medians of the rounds",
        title_justify="left",
    )
    for header in ("contestant", "events/s", "CPU us/event", "peak RSS MiB", "CPU x bare loop"):
        table.add_column(header, justify="left" if header == "contestant" else "right")
    for name, (events_per_s, cpu_us, rss_mib) in figures.items():
        table.add_row(
            name,
            f"{events_per_s:,.0f}",
            f"{cpu_us:.2f}",
            f"{rss_mib:.1f}",
            f"{cpu_us / figures[BARE_LOOP].cpu_us_per_event:.2f}x",
        )
    console.print(table)
    # Plain print: rich would wrap the line at the terminal width.
    print(ratio_line(figures[PIPELINE], figures[BARE_LOOP], figures.get(QUIX_FLOOR)), flush=True)
