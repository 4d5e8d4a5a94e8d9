"""The processor on a secured cluster: TLS and SCRAM-SHA-512 over SASL_SSL (real broker).

The test broker opens a SASL_SSL listener with a certificate made at test time and one SCRAM
user; the processor is given only that listener. It must count exactly through it, and a wrong
password must end its start-up within seconds, in one line that never shows the password.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from login_stream.local_broker import LocalBroker, SaslSslListener, free_port
from tests.scenario import assert_series, new_scenario
from tests.support import (
    Topics,
    create_topics,
    produce,
    running_processor,
    summary_reader,
)
from tests.tls import make_certificates

USERNAME = "login-stream"
PASSWORD = "s3cret-scram-pw"
WRONG_PASSWORD = "not-the-pw-4711"
GIVE_UP_WITHIN_SECONDS = 20.0


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    folder = tmp_path_factory.mktemp("secured")
    certificates = make_certificates(folder / "tls")
    listener = SaslSslListener(free_port(), certificates.broker_keystore, USERNAME, PASSWORD)
    with LocalBroker(port=free_port(), root=folder / "kafka", sasl_ssl=listener) as broker:
        yield broker


def secure_settings(broker: LocalBroker, password: str) -> dict[str, str]:
    assert broker.sasl_ssl is not None
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USERNAME,
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CA_LOCATION": str(broker.sasl_ssl.keystore.parent / "ca.pem"),
    }


def topics_on(broker: LocalBroker, name: str) -> Topics:
    # The test itself produces and reads on the plaintext listener of the same broker.
    topics = Topics(
        broker.bootstrap_servers, f"{name}-in", f"{name}-out", f"{name}-dlq", f"{name}-group"
    )
    create_topics(topics)
    return topics


def test_the_processor_counts_exactly_through_sasl_ssl(
    secured_broker: LocalBroker, tmp_path: Path
) -> None:
    topics = topics_on(secured_broker, "secured")
    scenario = new_scenario(seed=21)
    for index in range(3):
        scenario.add_window_events(index, count=scenario.rng.randint(20, 60), garbage_rate=0.05)
    produce(topics.bootstrap, topics.input, scenario.messages)
    expected = scenario.expected()

    with summary_reader(topics) as reader:
        with running_processor(
            topics,
            tmp_path / "state",
            tmp_path / "processor.log",
            **secure_settings(secured_broker, PASSWORD),
        ) as processor:
            reader.wait_for_interval(expected[-1]["timestamp_start"])
            assert processor.stop(signal.SIGTERM) == 0, processor.log()
            output = processor.log()
        reader.read_to_end()

    assert_series(reader.summaries, expected)
    assert PASSWORD not in output


def test_a_wrong_password_ends_start_up_within_seconds_in_one_line(
    secured_broker: LocalBroker, tmp_path: Path
) -> None:
    topics = topics_on(secured_broker, "refused")
    with running_processor(
        topics,
        tmp_path / "state",
        tmp_path / "processor.log",
        **secure_settings(secured_broker, WRONG_PASSWORD),
    ) as processor:
        assert processor.wait_for_exit(GIVE_UP_WITHIN_SECONDS) == 1
        output = processor.log()
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    assert "KAFKA_SASL_PASSWORD" in errors[0]
    assert WRONG_PASSWORD not in output
    assert "Traceback" not in output
