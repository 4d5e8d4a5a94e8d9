"""Command line of the benchmark: arguments, the broker, and the exit codes a user sees.

Exit codes: 0 done and equal; 1 a contestant failed or the summaries differ (the difference is
printed); 2 bad arguments; 130 interrupted. User mistakes and broker trouble end with one
readable message, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from types import FrameType

from confluent_kafka import KafkaException
from rich.console import Console

from devtools.local_broker import BrokerError
from login_stream.settings import ConfigError

from .broker import LOCAL_PORT, broker, described
from .contestants import ContestantError
from .dataset import DatasetError
from .harness import MismatchError, run_benchmark

DEFAULT_EVENTS = 1_000_000
# The small drain, as a share of the large one: far enough apart that the slope between them
# is not lost in the noise of either.
DEFAULT_SMALL_SHARE = 5
DEFAULT_ROUNDS = 3
# One partition and one instance: the shape the published figures were first measured in.
DEFAULT_PARTITIONS = 1
DEFAULT_INSTANCES = 1
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def _positive(text: str) -> int:
    try:
        value = int(text)  # accepts 1_000_000 too
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Drain pre-loaded login events, a small and a large set, with the pipeline "
        "as shipped and with a bare confluent-kafka loop (and the least Quix app with the "
        "pipeline's window); check the pipeline publishes what the baseline computes from the "
        "data; report events/s, CPU per event (the slope between the two sizes) and peak RSS "
        "of each, and the ratios of the pipeline to the references.",
    )
    parser.add_argument(
        "--events", type=_positive, default=DEFAULT_EVENTS, help="messages of the large drain"
    )
    parser.add_argument(
        "--small-events",
        type=_positive,
        default=None,
        help=f"messages of the small drain (default: a {DEFAULT_SMALL_SHARE}th of --events)",
    )
    parser.add_argument(
        "--rounds", type=_positive, default=DEFAULT_ROUNDS, help="runs of each contestant"
    )
    parser.add_argument(
        "--partitions",
        type=_positive,
        default=DEFAULT_PARTITIONS,
        help="partitions of the input topic, filled round-robin",
    )
    parser.add_argument(
        "--instances",
        type=_positive,
        default=DEFAULT_INSTANCES,
        help="pipeline processes on one consumer group (the references stay one process)",
    )
    parser.add_argument(
        "--quix-floor",
        action="store_true",
        help="also drain with the least Quix Streams app that has the pipeline's window "
        "(bench/quix_floor.py): the framework's share of the cost",
    )
    parser.add_argument(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        help="a running broker (default: $KAFKA_BOOTSTRAP_SERVERS, else the project's "
        f"local broker, started on port {LOCAL_PORT} and stopped at the end)",
    )
    args = parser.parse_args(argv)
    if args.small_events is None:
        args.small_events = max(1, args.events // DEFAULT_SMALL_SHARE)
    if args.small_events >= args.events:
        parser.error(
            f"--small-events ({args.small_events}) must be less than --events ({args.events})"
        )
    return args


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # SIGTERM takes the same way out as Ctrl-C, so children and the broker are stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console()
    if not console.is_terminal:
        # Piped into a file or CI log: room for the tables instead of rich's 80 columns.
        console.width = 120
    try:
        with broker(args.bootstrap_servers) as connection:
            console.print(f"broker: {described(connection)}")
            run_benchmark(
                connection,
                (args.small_events, args.events),
                args.rounds,
                args.partitions,
                args.instances,
                args.quix_floor,
                console,
            )
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BrokerError, ConfigError, ContestantError, DatasetError, MismatchError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except TimeoutError:
        print("bench: the broker did not answer in time", file=sys.stderr)
        return EXIT_FAILED
    except KafkaException as exc:
        print(f"bench: Kafka error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0
