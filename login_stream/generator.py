"""A data generator that behaves like the upstream "user-login" producer.

One JSON event per message, keyed with a fresh random UUID, ~2 events/s by default, the
`device_type` left out of about 5% of events. `python -m login_stream.generator --help`.
"""

from __future__ import annotations

import argparse
import logging
import random
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from types import FrameType
from typing import Any, Final

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from .connection import client_config
from .error_reports import ErrorReports
from .logs import configure_logging
from .settings import ConfigError, load_settings

logger = logging.getLogger("login_stream.generator")

APP_VERSION: Final = "2.3.0"
DEVICE_TYPES: Final = ("android", "iOS")
US_STATES: Final = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
]
PROGRESS_EVERY_SECONDS: Final = 5.0
BROKER_TIMEOUT_SECONDS: Final = 30.0
FLUSH_TIMEOUT_SECONDS: Final = 30.0


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_event(rng: random.Random, now_s: int, missing_probability: float) -> dict[str, Any]:
    """One upstream-shaped login event created at `now_s` (epoch seconds)."""
    event: dict[str, Any] = {
        "user_id": random_uuid(rng),
        "app_version": APP_VERSION,
        "device_type": rng.choice(DEVICE_TYPES),
        "ip": ".".join(str(rng.randrange(256)) for _ in range(4)),
        "locale": rng.choice(US_STATES),
        "device_id": random_uuid(rng),
        "timestamp": now_s,
    }
    if rng.random() < missing_probability:
        del event["device_type"]
    return event


def ensure_topic(
    client: Mapping[str, Any], topic: str, partitions: int, replication_factor: int = 1
) -> None:
    """Create `topic` unless it exists; `client` is a librdkafka configuration."""
    admin = AdminClient(dict(client))
    admin.list_topics(timeout=BROKER_TIMEOUT_SECONDS)
    new_topic = NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)
    future = admin.create_topics([new_topic])[topic]
    try:
        future.result()
        logger.info("created topic %s", topic)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise


class _Stop:
    requested = False

    def __call__(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def generate(
    client: Mapping[str, Any],
    topic: str,
    rate: float,
    count: int,
    seed: int | None,
    missing: float,
) -> int:
    """Produce events until `count` (0 = until SIGINT/SIGTERM); returns how many were sent."""
    rng = random.Random(seed)
    stop = _Stop()
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    errors: list[str] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            errors.append(str(error))

    producer = Producer({**client, "enable.idempotence": True})
    started = last_report = time.monotonic()
    sent = 0
    while not stop.requested and (count == 0 or sent < count):
        # A schedule anchored at the start keeps the rate exact instead of drifting.
        ahead = started + sent / rate - time.monotonic()
        if ahead > 0:
            time.sleep(min(ahead, 0.5))
            continue
        event = make_event(rng, int(time.time()), missing)
        producer.produce(
            topic, key=random_uuid(rng), value=orjson.dumps(event), on_delivery=delivered
        )
        producer.poll(0)
        sent += 1
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            elapsed = last_report - started
            logger.info(
                "sent %d events (%.1f/s), %d delivery errors", sent, sent / elapsed, len(errors)
            )
    remaining = producer.flush(FLUSH_TIMEOUT_SECONDS)
    logger.info("sent %d events; %d undelivered, %d delivery errors", sent, remaining, len(errors))
    return int(sent - remaining - len(errors))


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"generator: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    reports = ErrorReports(settings)
    parser = argparse.ArgumentParser(description="Produce upstream-like login events.")
    parser.add_argument("--bootstrap-servers", default=settings.kafka_bootstrap_servers)
    parser.add_argument("--topic", default=settings.input_topic)
    parser.add_argument("--rate", type=float, default=settings.generator_rate, help="events/s")
    parser.add_argument("--count", type=int, default=settings.generator_count, help="0 = forever")
    parser.add_argument("--seed", type=int, default=settings.generator_seed)
    parser.add_argument(
        "--missing-probability", type=float, default=settings.generator_missing_probability
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=settings.input_topic_partitions,
        help="for a new topic only",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.count < 0 or not 0 <= args.missing_probability <= 1:
        parser.error("--rate must be > 0, --count >= 0, --missing-probability within [0, 1]")
    client = {**client_config(settings), "bootstrap.servers": args.bootstrap_servers}
    try:
        ensure_topic(client, args.topic, args.partitions, settings.topic_replication_factor)
        generate(
            client,
            args.topic,
            args.rate,
            args.count,
            args.seed,
            args.missing_probability,
        )
    except KafkaException as exc:
        line = f"generator: Kafka error: {exc.args[0]}"
        print(line, file=sys.stderr)
        reports.fatal(line)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
