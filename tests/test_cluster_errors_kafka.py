"""The broker gone for longer than the consumer session (real broker, real processes).

A short broker restart is ridden out (`tests/test_failures_kafka.py`); a broker that stays
away past the session costs the processor its place in the group. It must then end by itself,
with exit code 1 for the orchestrator and one line naming the cause and the setting, instead
of retrying in silence.
"""

from __future__ import annotations

from pathlib import Path

from devtools.local_broker import LocalBroker, free_port
from login_stream.broker_watch import PROBE_INTERVAL_SECONDS, PROBE_TIMEOUT_SECONDS
from tests.support import (
    Topics,
    assert_connection_losses_spaced,
    connection_loss_lines,
    create_topics,
    running_processor,
)

# The shortest session the settings and the broker (group.min.session.timeout.ms) allow.
SESSION_SECONDS = 6
# The processor notices within a probe (interval and timeout) after the session, then has the
# failed stop's 5 s to end; plus leeway for a slow machine.
EXIT_WITHIN_SECONDS = SESSION_SECONDS + PROBE_INTERVAL_SECONDS + PROBE_TIMEOUT_SECONDS + 5 + 15


def test_a_broker_gone_longer_than_the_session_ends_the_processor_in_one_line(
    tmp_path: Path,
) -> None:
    with LocalBroker(port=free_port(), root=tmp_path / "kafka") as broker:
        topics = Topics(
            broker.bootstrap_servers, "user-login", "user-login-processed", "user-login-dlq", "g"
        )
        create_topics(topics)
        with running_processor(
            topics,
            tmp_path / "state",
            tmp_path / "processor.log",
            CONSUMER_SESSION_TIMEOUT_SECONDS=str(SESSION_SECONDS),
        ) as processor:
            processor.wait_until_ready()
            broker.stop(keep_data=True)
            assert processor.wait_for_exit(EXIT_WITHIN_SECONDS) == 1, processor.log()
            output = processor.log()

    verdicts = [line for line in output.splitlines() if "CONSUMER_SESSION_TIMEOUT_SECONDS" in line]
    assert len(verdicts) == 1, output
    assert " ERROR " in verdicts[0]
    assert "lost its place in consumer group g" in verdicts[0]
    assert f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}" in verdicts[0]
    assert f"CONSUMER_SESSION_TIMEOUT_SECONDS={SESSION_SECONDS}" in verdicts[0]
    assert "Traceback" not in output
    # Meanwhile the clients' failed attempts to reach the broker came as a few warnings.
    assert connection_loss_lines(output), output
    assert_connection_losses_spaced(output)
