"""`make test` depends on nothing of the user's but the broker address it is given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import BOOTSTRAP_VARIABLE, REPO

# What a user running against a secured cluster has, as the README's own examples show.
USERS_OWN = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "analytics",
    "KAFKA_SASL_PASSWORD": "not-for-tests",
    "KAFKA_SSL_CA_LOCATION": "/etc/ssl/certs/ca-certificates.crt",
    "LOG_FORMAT": "json",
    "WINDOW_SECONDS": "60",
    "CONSUMER_GROUP": "analytics",
    "INPUT_TOPIC": "logins-prod",
    "EVENT_TIME": "kafka",
    "Quix__Broker__Address": "elsewhere:9092",
}
A_TEST = "tests/test_pipeline_kafka.py::test_every_interval_is_summarised_exactly"
RUN_TIMEOUT_SECONDS = 300


def test_a_users_env_file_and_exported_settings_leave_the_tests_alone(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """With the user's `.env` beside the repository and their settings exported, a broker test
    still passes: only `KAFKA_BOOTSTRAP_SERVERS` reaches it."""
    env_file = REPO / ".env"
    written = not env_file.exists()
    if written:  # a user's own `.env` is left as it is, and serves the same purpose
        env_file.write_text("".join(f"{name}={value}\n" for name, value in USERS_OWN.items()))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", A_TEST],
            cwd=REPO,
            env={**os.environ, **USERS_OWN, BOOTSTRAP_VARIABLE: kafka_bootstrap},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )
    finally:
        if written:
            env_file.unlink()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
