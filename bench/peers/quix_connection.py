"""The product's connection settings for the Quix Streams peer, in the names of quixstreams'
``ConnectionConfig`` (librdkafka's settings), so that the peer runs on the same (secured)
cluster as the pipeline. Kept apart from ``quix_pipeline`` so that it needs no quixstreams."""

from __future__ import annotations

from typing import Any

from app.settings import Settings


def connection_options(settings: Settings) -> dict[str, Any]:
    """Brokers, SASL, TLS and the client certificate, as ``ConnectionConfig(**options)``."""
    password = settings.kafka_sasl_password
    key_password = settings.kafka_ssl_key_password
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": protocol.lower(),
    }
    if protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_username": settings.kafka_sasl_username,
            "sasl_password": password.get_secret_value() if password else None,
        }
    if protocol.endswith("SSL"):
        files = {
            "ssl_ca_location": settings.kafka_ssl_cafile,
            "ssl_certificate_location": settings.kafka_ssl_certfile,
            "ssl_key_location": settings.kafka_ssl_keyfile or settings.kafka_ssl_certfile,
        }
        options |= {name: str(path) for name, path in files.items() if path is not None}
        if key_password is not None:
            options["ssl_key_password"] = key_password.get_secret_value()
    return options
