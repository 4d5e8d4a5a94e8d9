"""The command line every reference process of the benchmark shares (baseline, bare loop, Quix
floor): where to read, where to write what it computed, and when it read its first message
and finished, which the harness turns into its wall time."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import orjson


def arguments(description: str, out_help: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--connection", type=Path, required=True, help="librdkafka settings, as JSON"
    )
    parser.add_argument("--topic", required=True)
    parser.add_argument("--out", type=Path, required=True, help=out_help)
    parser.add_argument(
        "--timing", type=Path, required=True, help="first message and done times, as JSON"
    )
    parser.add_argument("--window-seconds", type=int, required=True)
    return parser


def connection(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = orjson.loads(args.connection.read_bytes())
    return settings


def finish(args: argparse.Namespace, result: bytes, first_at: float | None) -> None:
    """Write the result, then the times: the harness reads the times once the process ended."""
    args.out.write_bytes(result)
    done_at = time.time()
    args.timing.write_bytes(orjson.dumps({"first_message_at": first_at, "done_at": done_at}))
