"""Command line of the benchmark: its flags, the broker it runs against, and the exit codes:
0 every pipeline drain equals the baseline; 1 a failure or a mismatch (printed); 2 bad flags;
130 interrupted (Ctrl-C or SIGTERM). A user's mistake ends in one line, never a traceback.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, NoReturn

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from bench import BenchError
from devtools.local_broker import BrokerError, LocalBroker
from login_stream.connection import client_config
from login_stream.settings import ConfigError, load_settings

from .harness import run_benchmark

# Not the demo's nor the tests' port, so a broker running for them is never disturbed.
LOCAL_PORT: Final = 39192
PROBE_TIMEOUT_SECONDS: Final = 10.0


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line instead of argparse's usage block.
        self.exit(2, f"bench: {message} (see python -m bench --help)\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="python -m bench",
        description="Drain pre-loaded login events with the pipeline as shipped, the bare loop "
        "and the Quix floor; see docs/benchmarks.md.",
    )
    add = parser.add_argument
    add("--events", type=int, default=1_000_000, help="messages of the large drain (1000000)")
    add("--small-events", type=int, help="messages of the small drain (a fifth of --events)")
    add("--rounds", type=int, default=3, help="drains of each size per contestant (3)")
    add("--partitions", type=int, default=1, help="partitions of the input topic (1)")
    add("--instances", type=int, default=1, help="pipeline processes on one consumer group (1)")
    add("--quix-floor", action="store_true", help="also drain with the Quix floor")
    add(
        "--bootstrap-servers",
        default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None,
        help="a running broker (default: $KAFKA_BOOTSTRAP_SERVERS, else a local broker on "
        f"port {LOCAL_PORT}, stopped at the end)",
    )
    args = parser.parse_args(argv)
    # Far enough apart that the slope between the two is not lost in the noise of either.
    if args.small_events is None:
        args.small_events = max(1, args.events // 5)
    for name in ("events", "small_events", "rounds", "partitions", "instances"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.small_events >= args.events:
        parser.error(f"--small-events ({args.small_events}) must be less than --events")
    return args


@contextmanager
def broker(bootstrap_servers: str | None) -> Iterator[dict[str, Any]]:
    """librdkafka settings of a broker that answers: the one given, reached with the project's
    security settings from the environment (as the processor reads them), else a local one."""
    if bootstrap_servers:
        config = client_config(load_settings(kafka_bootstrap_servers=bootstrap_servers))
        del config["logger"]  # the processor's log handler: the benchmark's clients stay quiet
        shown = f"{bootstrap_servers} ({config.get('security.protocol', 'PLAINTEXT').upper()})"
        try:
            AdminClient({**config, "log_level": 0}).list_topics(timeout=PROBE_TIMEOUT_SECONDS)
        except KafkaException:
            raise BenchError(
                f"no Kafka broker answers at {shown}; check KAFKA_BOOTSTRAP_SERVERS and the "
                "KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_* settings"
            ) from None
        print(f"broker: {shown}", flush=True)  # never a secret
        yield config
        return
    local = LocalBroker(port=LOCAL_PORT)
    try:
        local.start()
        print(f"broker: {local.bootstrap_servers} (PLAINTEXT, started for this run)", flush=True)
        yield {"bootstrap.servers": local.bootstrap_servers}
    finally:
        gc.collect()  # client handles awaiting collection would log every lost connection
        local.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # cleans up as Ctrl-C does
    try:
        with broker(args.bootstrap_servers) as connection:
            run_benchmark(connection, args)
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except (BenchError, BrokerError, ConfigError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    except (KafkaException, TimeoutError) as exc:
        error = exc.args[0] if exc.args else "the broker did not answer in time"
        print(f"bench: Kafka error: {error}", file=sys.stderr)
        return 1
    return 0
