"""Configuration: defaults, one-line errors for bad values, and `.env.example` in sync."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.local_broker import free_port
from login_stream.settings import ConfigError, Settings, load_settings
from tests.support import REPO


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(str(tmp_path))  # no stray .env


def test_defaults_run_without_editing_anything() -> None:
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "localhost:9092"
    assert settings.input_topic == "user-login"
    assert settings.output_topic == "user-login-processed"
    assert settings.window_seconds == 10
    assert settings.processing_guarantee == "exactly-once"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WINDOW_SECONDS", "abc"),
        ("WINDOW_SECONDS", "0"),
        ("LOG_LEVEL", "loud"),
        ("AUTO_OFFSET_RESET", "sometimes"),
        ("GENERATOR_MISSING_PROBABILITY", "1.5"),
    ],
)
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert name in message
    assert "\n" not in message


def test_log_level_is_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings().log_level == "DEBUG"


def test_processor_exits_with_one_line_for_bad_configuration() -> None:
    env = {**os.environ, "WINDOW_SECONDS": "abc"}
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if "WINDOW_SECONDS" in line]
    assert len(lines) == 1
    assert "Traceback" not in result.stderr


def test_processor_exits_with_one_line_when_no_broker_answers(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": f"localhost:{free_port()}",
        "KAFKA_CONNECT_TIMEOUT_SECONDS": "2",
        "STATE_DIR": str(tmp_path / "state"),
        "HEALTH_PORT": "0",
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in errors[0]
    assert "Traceback" not in result.stderr


def test_env_example_lists_every_setting_with_its_default() -> None:
    example: dict[str, str] = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            example[name] = value
    assert set(example) == {name.upper() for name in Settings.model_fields}
    defaults = load_settings()
    for name, value in example.items():
        default = getattr(defaults, name.lower())
        assert value == ("" if default is None else str(default)), name


def test_instance_identity_defaults_to_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROCESSOR_INSTANCE_ID", raising=False)
    assert load_settings().instance_id == socket.gethostname()
    monkeypatch.setenv("PROCESSOR_INSTANCE_ID", "login-stream-2")
    assert load_settings().instance_id == "login-stream-2"


def test_each_instance_gets_its_own_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIR", "/var/lib/login-stream/{instance}")
    monkeypatch.setenv("PROCESSOR_INSTANCE_ID", "b")
    assert load_settings().instance_state_dir == Path("/var/lib/login-stream/b")


def test_sasl_without_credentials_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "someone")
    with pytest.raises(ConfigError) as error:
        load_settings()
    message = str(error.value)
    assert "KAFKA_SASL_MECHANISM" in message and "KAFKA_SASL_PASSWORD" in message
    assert "someone" not in message and "\n" not in message


def test_a_bad_password_value_is_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-pw")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", "/no/such/ca.pem")
    with pytest.raises(ConfigError) as error:
        load_settings()
    assert "KAFKA_SSL_CA_LOCATION" in str(error.value)
    assert "hunter2-pw" not in str(error.value)
