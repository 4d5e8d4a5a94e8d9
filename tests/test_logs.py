"""What reaches the log while brokers are unreachable (no Kafka): one line per period about the
lost connection, as a warning; everything else as it was logged."""

from __future__ import annotations

import logging

import pytest

from login_stream.logs import ConnectionLossLines, configure_logging

# As librdkafka, Quix and the clock write them while the one broker is down.
REFUSED = (
    "FAIL [rdkafka#producer-33] [thrd:localhost:48607/1]: localhost:48607/1: Connect to "
    "ipv4#127.0.0.1:48607 failed: Connection refused (after 0ms in state CONNECT)"
)
ALL_DOWN = 'Kafka consumer error: 1/1 brokers are down code="-187"'
CLOCK_DOWN = (
    'clock producer: KafkaError{code=_ALL_BROKERS_DOWN,val=-187,str="1/1 brokers are down"}'
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(name: str, level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


def test_a_burst_of_connection_errors_passes_as_one_warning_per_period() -> None:
    clock = FakeClock()
    lines = ConnectionLossLines(every_seconds=10.0, clock=clock)
    burst = [
        record("librdkafka", logging.ERROR, REFUSED),
        record("quixstreams.kafka.consumer", logging.ERROR, ALL_DOWN),
        record("login_stream.clock", logging.WARNING, CLOCK_DOWN),
        record("quixstreams.kafka.producer", logging.ERROR, REFUSED),
    ]
    passed = [r for r in burst if lines.filter(r)]
    assert passed == [burst[0]]
    assert passed[0].levelname == "WARNING"
    assert passed[0].levelno == logging.WARNING

    clock.now += 9.9
    assert not lines.filter(record("librdkafka", logging.ERROR, REFUSED))
    clock.now += 0.1
    later = record("quixstreams.kafka.consumer", logging.ERROR, ALL_DOWN)
    assert lines.filter(later)
    assert later.levelname == "WARNING"
    assert later.getMessage() == f"{ALL_DOWN} (4 more lines about lost connections held back)"

    # The count starts again after every line that passes.
    clock.now += 10.0
    last = record("librdkafka", logging.ERROR, REFUSED)
    assert lines.filter(last)
    assert last.getMessage() == REFUSED


@pytest.mark.parametrize(
    ("name", "level", "message"),
    [
        # The processor's own verdict quotes the Kafka error: it stays one ERROR line.
        (
            "login_stream",
            logging.ERROR,
            f"no broker answers at KAFKA_BOOTSTRAP_SERVERS: {ALL_DOWN}",
        ),
        ("login_stream.shutdown", logging.ERROR, "the processor did not stop within 5 s"),
        # Other client errors, and the client's informational lines, pass as they are.
        ("librdkafka", logging.ERROR, "FAIL [rdkafka#consumer-1]: SASL authentication error"),
        ("quixstreams.kafka.consumer", logging.INFO, REFUSED),
    ],
)
def test_other_lines_pass_as_logged_during_an_outage(name: str, level: int, message: str) -> None:
    lines = ConnectionLossLines(every_seconds=10.0, clock=FakeClock())
    assert lines.filter(record("librdkafka", logging.ERROR, REFUSED))
    other = record(name, level, message)
    assert lines.filter(other)
    assert other.levelno == level
    assert other.getMessage() == message


def test_the_processors_log_holds_back_repeated_connection_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("INFO", "text")
        for _ in range(20):
            logging.getLogger("quixstreams.kafka.consumer").error(ALL_DOWN)
            logging.getLogger("librdkafka").error(REFUSED)
        logging.getLogger("login_stream").error("a verdict")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    output = capsys.readouterr().err.splitlines()
    assert len(output) == 2, output
    assert " WARNING [quixstreams.kafka.consumer] " in output[0]
    assert output[0].endswith(ALL_DOWN)
    assert " ERROR [login_stream] a verdict" in output[1]
