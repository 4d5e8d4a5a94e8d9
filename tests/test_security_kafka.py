"""The processor on a secured cluster: TLS and SCRAM-SHA-512 over SASL_SSL (real broker).

The test broker opens a SASL_SSL listener with a certificate made at test time and enforces
ACLs: one SCRAM user may do anything, a second only what a test grants it. The processor is
given only that listener. It must count exactly through it; a wrong password, and a user the
ACLs refuse, must end its start-up within seconds, in one line that names the cause and never
shows the password. The benchmark, given the same settings, must run through it too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from devtools.local_broker import LocalBroker, SaslSslListener, free_port
from tests.scenario import assert_series, new_scenario
from tests.support import (
    REPO,
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
RESTRICTED_USERNAME = "login-stream-restricted"
RESTRICTED_PASSWORD = "r3stricted-scram-pw"
INSTANCE_ID = "instance-0"
GIVE_UP_WITHIN_SECONDS = 20.0
# A refusal can come only after the topics the user may create are created, a second each.
DENIED_WITHIN_SECONDS = 30.0
BENCH_TIMEOUT_SECONDS = 300


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    folder = tmp_path_factory.mktemp("secured")
    certificates = make_certificates(folder / "tls")
    listener = SaslSslListener(
        free_port(),
        certificates.broker_keystore,
        USERNAME,
        PASSWORD,
        more_users=((RESTRICTED_USERNAME, RESTRICTED_PASSWORD),),
        acls=True,
    )
    with LocalBroker(port=free_port(), root=folder / "kafka", sasl_ssl=listener) as broker:
        yield broker


def secure_settings(broker: LocalBroker, password: str, username: str = USERNAME) -> dict[str, str]:
    assert broker.sasl_ssl is not None
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": username,
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


def test_the_benchmark_connects_every_client_through_sasl_ssl(
    secured_broker: LocalBroker,
) -> None:
    """`make bench` against a secured cluster: its own clients, its references and the
    processors it starts all take the security settings, and every pipeline drain still
    equals the baseline (the benchmark exits 1 otherwise)."""
    env = {**os.environ, **secure_settings(secured_broker, PASSWORD), "PYTHONPATH": str(REPO)}
    bench = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--events",
            "300",
            "--small-events",
            "100",
            "--rounds",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=BENCH_TIMEOUT_SECONDS,
    )
    output = bench.stdout + bench.stderr
    assert bench.returncode == 0, output
    assert f"broker: {env['KAFKA_BOOTSTRAP_SERVERS']} (SASL_SSL)" in output
    assert bench.stdout.splitlines()[-1].startswith("ratio pipeline/bare_loop: ")
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


def grant(broker: LocalBroker, resource: ResourceType, prefix: str) -> None:
    """Allow the restricted user every operation on the resources named `prefix...`."""
    binding = AclBinding(
        resource,
        prefix,
        ResourcePatternType.PREFIXED,
        f"User:{RESTRICTED_USERNAME}",
        "*",
        AclOperation.ALL,
        AclPermissionType.ALLOW,
    )
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    for future in admin.create_acls([binding]).values():
        future.result()


# What the restricted user is granted, and what the processor then finds refused first:
# nothing (it cannot even see its input topic, so it tries to create it), its topics only (its
# transactional producer is refused), its topics and transactional id (its consumer group).
@pytest.mark.parametrize("granted", ["nothing", "topics", "topics-and-transactions"])
def test_a_user_the_acls_refuse_ends_start_up_in_one_line_naming_what_is_denied(
    secured_broker: LocalBroker, tmp_path: Path, granted: str
) -> None:
    name = f"acl-{uuid.uuid4().hex[:8]}"
    topics = topics_on(secured_broker, name)
    identity = f"{topics.consumer_group}-{INSTANCE_ID}"
    if granted != "nothing":
        grant(secured_broker, ResourceType.TOPIC, f"{name}-")
        grant(secured_broker, ResourceType.TOPIC, f"changelog__{topics.consumer_group}--")
    if granted == "topics-and-transactions":
        grant(secured_broker, ResourceType.TRANSACTIONAL_ID, identity)
    denied = {
        "nothing": f"a topic (INPUT_TOPIC={topics.input},",
        "topics": f"the transactional id {identity}",
        "topics-and-transactions": f"the consumer group CONSUMER_GROUP={topics.consumer_group}",
    }[granted]

    with running_processor(
        topics,
        tmp_path / "state",
        tmp_path / "processor.log",
        PROCESSOR_INSTANCE_ID=INSTANCE_ID,
        **secure_settings(secured_broker, RESTRICTED_PASSWORD, RESTRICTED_USERNAME),
    ) as processor:
        assert processor.wait_for_exit(DENIED_WITHIN_SECONDS) == 1, processor.log()
        output = processor.log()
    errors = [line for line in output.splitlines() if "ERROR" in line]
    assert len(errors) == 1, output
    assert "authorization denied" in errors[0]
    assert f"KAFKA_SASL_USERNAME={RESTRICTED_USERNAME}" in errors[0]
    assert denied in errors[0], errors[0]
    assert "ACLs" in errors[0]
    assert RESTRICTED_PASSWORD not in output
    assert "Traceback" not in output
