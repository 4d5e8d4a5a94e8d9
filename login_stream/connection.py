"""How every Kafka client of the project connects: one Quix `ConnectionConfig` from the settings.

The processor hands it to Quix as its broker address; the project's own confluent-kafka clients
(the clock, the state check, the generator, the live view) take its librdkafka form. So TLS and
SASL are set once, in `Settings`, and no client can be left on plaintext by accident.
"""

from __future__ import annotations

from typing import Any

from quixstreams.kafka.configuration import ConnectionConfig

from .logs import LIBRDKAFKA_LOGGER
from .settings import Settings


def connection_config(settings: Settings) -> ConnectionConfig:
    files = {
        "ssl_ca_location": settings.kafka_ssl_ca_location,
        "ssl_certificate_location": settings.kafka_ssl_certificate_location,
        "ssl_key_location": settings.kafka_ssl_key_location,
    }
    return ConnectionConfig.model_validate(
        {
            "bootstrap_servers": settings.kafka_bootstrap_servers,
            "security_protocol": settings.kafka_security_protocol,
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_username": settings.kafka_sasl_username,
            "sasl_password": settings.kafka_sasl_password,
            "ssl_key_password": settings.kafka_ssl_key_password,
            **{name: str(path) for name, path in files.items() if path is not None},
        }
    )


def client_config(settings: Settings) -> dict[str, Any]:
    """librdkafka settings for a confluent-kafka client, secrets included: never log them."""
    config: dict[str, Any] = connection_config(settings).as_librdkafka_dict()
    return {**config, "logger": LIBRDKAFKA_LOGGER}
