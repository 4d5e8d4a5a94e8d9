"""All configuration of the processor and the generator, read from the environment.

One class holds every setting so that `.env.example`, the README table and the code cannot
drift apart. A bad value stops start-up with one line naming the variable (see `load_settings`).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Final, Literal

from pydantic import Field, FilePath, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INSTANCE_PLACEHOLDER: Final = "{instance}"

# Never shown, not even in a complaint about their value.
SECRET_SETTINGS: Final = frozenset(
    {"KAFKA_SASL_PASSWORD", "KAFKA_SSL_KEY_PASSWORD", "SENTRY_DSN", "POSTGRES_PASSWORD"}
)

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(Exception):
    """A setting has a value the program cannot run with; the message is for the user."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
        frozen=True,
    )

    # Kafka connection and topics
    kafka_bootstrap_servers: str = Field("localhost:9092", min_length=1)
    kafka_connect_timeout_seconds: float = Field(30.0, gt=0)
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # CA certificate(s) to verify the brokers with (PEM); empty = the system's trust store.
    kafka_ssl_ca_location: FilePath | None = None
    # Client certificate and key (PEM) for mutual TLS.
    kafka_ssl_certificate_location: FilePath | None = None
    kafka_ssl_key_location: FilePath | None = None
    kafka_ssl_key_password: SecretStr | None = None
    input_topic: str = Field("user-login", min_length=1)
    # Used only when the input topic does not exist yet and the processor or generator creates it.
    input_topic_partitions: int = Field(1, gt=0)
    # Replicas of every topic the pipeline creates (input when missing, output, dead letters,
    # clock, partials, and through them Quix's changelogs): 1 for a local broker, 3 in production.
    topic_replication_factor: int = Field(1, gt=0)
    output_topic: str = Field("user-login-processed", min_length=1)
    dlq_topic: str = Field("user-login-dlq", min_length=1)
    # Empty means "<consumer_group>-clock": each pipeline keeps its own clock.
    clock_topic: str = ""

    # Processor
    consumer_group: str = Field("login-stream", min_length=1)
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    window_seconds: int = Field(10, gt=0)
    window_grace_seconds: int = Field(2, ge=0)
    emit_empty_intervals: bool = True
    clock_tick_seconds: float = Field(0.5, gt=0)
    event_time: Literal["event", "kafka"] = "event"
    # A record placed further ahead of the processor's clock than this never moves time.
    future_tolerance_seconds: float = Field(5.0, gt=0)
    state_dir: Path = Path("state")
    state_rebuild_on_cluster_change: bool = False
    commit_interval_seconds: float = Field(1.0, gt=0)
    # A checkpoint commit running longer than this is stuck inside the Kafka client: exit 1.
    commit_stall_seconds: float = Field(60.0, gt=0)
    consumer_session_timeout_seconds: int = Field(45, ge=6, le=300)
    # Empty means the host name: a pod's name in a StatefulSet, a container's in compose.
    processor_instance_id: str = ""
    processing_guarantee: Literal["exactly-once", "at-least-once"] = "exactly-once"
    # Start with a Quix Streams version other than the one the processor was written for.
    accept_other_quix_version: bool = False
    max_message_bytes: int = Field(65536, gt=0)
    log_level: LogLevel = "INFO"
    # text (readable) or json (one object per line), for every component and Quix's own lines.
    log_format: Literal["text", "json"] = "text"
    shutdown_timeout_seconds: float = Field(20.0, gt=0)
    # 0 turns the health endpoints off.
    health_port: int = Field(8080, ge=0, le=65535)
    health_host: str = Field("0.0.0.0", min_length=1)
    health_stale_seconds: float = Field(30.0, gt=0)

    # Fatal errors of the processor and the generator go to Sentry; empty = off.
    sentry_dsn: SecretStr | None = None
    sentry_environment: str = Field("production", min_length=1)

    # The summary table in PostgreSQL (`python -m login_stream.sink`); empty host = no sink.
    postgres_host: str = ""
    postgres_port: int = Field(5432, ge=1, le=65535)
    postgres_database: str = Field("login_stream", min_length=1)
    postgres_user: str = Field("login_stream", min_length=1)
    postgres_password: SecretStr | None = None
    # A plain SQL name: it also names the views and the index made beside the table.
    postgres_table: str = Field("login_summaries", pattern=r"^[a-z_][a-z0-9_]{0,39}$")
    postgres_connect_timeout_seconds: int = Field(10, gt=0)
    # While the database cannot be reached, rows wait in Kafka and writing is retried this often.
    postgres_retry_seconds: float = Field(10.0, gt=0)
    # Empty means "<consumer_group>-postgres".
    postgres_consumer_group: str = ""

    # The dashboard of the summary table (`python -m login_stream.dashboard`).
    dashboard_port: int = Field(8501, ge=1, le=65535)
    dashboard_refresh_seconds: float = Field(5.0, gt=0)
    # How many of the newest intervals it shows.
    dashboard_intervals: int = Field(90, gt=0)

    # Generator
    generator_rate: float = Field(2.0, gt=0)
    generator_count: int = Field(0, ge=0)
    generator_seed: int | None = None
    generator_missing_probability: float = Field(0.05, ge=0, le=1)

    @property
    def clock_topic_name(self) -> str:
        return self.clock_topic or f"{self.consumer_group}-clock"

    @property
    def postgres_consumer_group_name(self) -> str:
        return self.postgres_consumer_group or f"{self.consumer_group}-postgres"

    @property
    def instance_id(self) -> str:
        """The stable identity of this processor instance."""
        return self.processor_instance_id or socket.gethostname()

    @property
    def instance_state_dir(self) -> Path:
        """STATE_DIR with `{instance}` replaced by the instance id, so that replicas sharing
        one volume each get a directory of their own."""
        return Path(str(self.state_dir).replace(INSTANCE_PLACEHOLDER, self.instance_id))

    @property
    def partials_topic_name(self) -> str:
        """Internal topic from the per-partition stage to the merge."""
        return f"{self.consumer_group}-partials"

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name.upper()
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                    f"{', '.join(missing)}"
                )
        if (self.kafka_ssl_certificate_location is None) != (self.kafka_ssl_key_location is None):
            raise ValueError(
                "mutual TLS needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
            )
        return self

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning a validation failure into one readable `ConfigError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        if not first["loc"]:  # a rule across settings: its message names them
            raise ConfigError(f"invalid configuration: {first['msg']}") from None
        name = str(first["loc"][0]).upper()
        shown = "(hidden)" if name in SECRET_SETTINGS else repr(first.get("input"))
        raise ConfigError(f"invalid configuration: {name}={shown}: {first['msg']}") from None
