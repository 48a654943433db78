"""Settings: the environment names and defaults of CONTRACT §1, and secrets kept out of logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Settings


def test_contract_defaults():
    s = Settings()
    assert s.kafka_bootstrap_servers == "localhost:9092"
    assert s.worker_web_host == "127.0.0.1"
    assert s.worker_web_port == 6066
    assert s.data_dir == Path("./data/worker-6066")
    assert str(s.data_dir) == "data/worker-6066"
    assert s.app_id == "property-analytics"
    assert s.topic_partitions == 12
    assert s.views_topic == "property.views"
    assert s.profiles_topic == "user.profiles"
    assert s.insights_topic == "analytics.insights"
    assert s.dlq_views_topic == "property.views.dlq"
    assert s.dlq_profiles_topic == "user.profiles.dlq"


def test_contract_default_limits_and_windows():
    s = Settings()
    assert s.max_value_bytes == 65536
    assert s.future_tolerance_seconds == 300
    assert s.hourly_grace_seconds == 15 * 60
    assert s.weekly_grace_seconds == 3600
    assert s.hourly_retention_seconds == 48 * 3600
    assert s.weekly_retention_weeks == 5
    assert s.dedupe_horizon_seconds == 24 * 3600
    assert (s.spike_min_views, s.spike_ratio, s.spike_baseline_hours) == (20, 3.0, 24)
    assert (s.trend_min_views, s.trend_ratio) == (50, 2.0)


def test_environment_names(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("WORKER_WEB_HOST", "0.0.0.0")
    monkeypatch.setenv("WORKER_WEB_PORT", "6067")
    monkeypatch.setenv("APP_ID", "pa-test")
    monkeypatch.setenv("TOPIC_PARTITIONS", "6")

    s = Settings()

    assert s.kafka_bootstrap_servers == "broker-a:9092,broker-b:9092"
    assert s.worker_web_host == "0.0.0.0"
    assert s.worker_web_port == 6067
    assert s.data_dir == Path("data/worker-6067")  # follows the port
    assert s.app_id == "pa-test"
    assert s.topic_partitions == 6
    assert s.views_changelog_topic == "pa-test-views-state-changelog"
    assert s.segments_repartition_topic == "pa-test-views-by-user-repartition"
    assert s.segments_changelog_topic == "pa-test-segment-users-state-changelog"
    assert s.partials_topic == "pa-test-segment-partials"
    assert s.kafka_client_kwargs() == {
        "bootstrap_servers": "broker-a:9092,broker-b:9092",
        "security_protocol": "PLAINTEXT",
    }


def test_worker_data_dir_overrides_the_default(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKER_WEB_PORT", "6070")
    monkeypatch.setenv("WORKER_DATA_DIR", str(tmp_path / "w2"))
    assert Settings().data_dir == tmp_path / "w2"


def test_two_workers_differ_only_in_port_and_data_dir(monkeypatch):
    monkeypatch.setenv("WORKER_WEB_PORT", "6066")
    first = Settings()
    monkeypatch.setenv("WORKER_WEB_PORT", "6067")
    second = Settings()
    assert first.data_dir != second.data_dir
    assert first.app_id == second.app_id


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WORKER_WEB_PORT", "0"),
        ("WORKER_WEB_PORT", "65536"),
        ("WORKER_WEB_PORT", "http"),
        ("TOPIC_PARTITIONS", "0"),
        ("KAFKA_SECURITY_PROTOCOL", "TLS"),
    ],
)
def test_invalid_values_are_refused(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(ValidationError):
        s.worker_web_port = 7000


def test_sasl_password_is_masked_in_repr_and_str(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "analytics")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-secret")

    s = Settings()

    assert "hunter2-secret" not in repr(s)
    assert "hunter2-secret" not in str(s)
    assert "kafka_sasl_password=SecretStr('**********')" in repr(s)
    assert repr(s.kafka_sasl_password) == "SecretStr('**********')"
    assert str(s.kafka_sasl_password) == "**********"
    # The real value is only handed to the Kafka client.
    assert s.kafka_client_kwargs() == {
        "bootstrap_servers": "localhost:9092",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "analytics",
        "sasl_plain_password": "hunter2-secret",
    }


def test_api_token_is_masked_too(monkeypatch):
    monkeypatch.setenv("API_TOKEN", "tok-123456")
    s = Settings()
    assert "tok-123456" not in repr(s)
    assert s.api_token.get_secret_value() == "tok-123456"


# --- TLS and client certificates (mutual TLS) ------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, and a client certificate with its key encrypted by a password (openssl)."""
    import subprocess

    d = tmp_path_factory.mktemp("pki")

    def sh(*args: str) -> None:
        subprocess.run(args, cwd=d, check=True, capture_output=True)

    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
       "-subj", "/CN=test CA", "-keyout", "ca.key", "-out", "ca.pem")
    sh("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
       "-aes-256-cbc", "-pass", "pass:key-secret", "-out", "client.key")
    sh("openssl", "req", "-new", "-key", "client.key", "-passin", "pass:key-secret",
       "-subj", "/CN=analytics", "-out", "client.csr")
    sh("openssl", "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
       "-CAcreateserial", "-days", "2", "-out", "client.pem")
    return d


def _mtls_env(monkeypatch, pki, protocol="SASL_SSL", key_password="key-secret"):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", protocol)
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "analytics")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(pki / "ca.pem"))
    monkeypatch.setenv("KAFKA_SSL_CERTFILE", str(pki / "client.pem"))
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(pki / "client.key"))
    monkeypatch.setenv("KAFKA_SSL_KEY_PASSWORD", key_password)


def test_client_certificate_reaches_every_client_through_one_context(monkeypatch, pki):
    import ssl

    _mtls_env(monkeypatch, pki)
    s = Settings()
    kwargs = s.kafka_client_kwargs()
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "test CA"),),)]
    assert s.kafka_client_kwargs()["ssl_context"] is context  # one context, loaded once
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    credentials = s.faust_credentials()  # faust's own consumer and producer
    assert credentials.ssl_context is context
    assert credentials.protocol.value == "SASL_SSL" and credentials.username == "analytics"
    assert "key-secret" not in repr(s)


def test_ssl_protocol_gives_faust_ssl_credentials(monkeypatch, pki):
    _mtls_env(monkeypatch, pki, protocol="SSL")
    monkeypatch.delenv("KAFKA_SASL_USERNAME")
    monkeypatch.delenv("KAFKA_SASL_PASSWORD")
    s = Settings()
    assert s.faust_credentials().protocol.value == "SSL"
    assert "sasl_mechanism" not in s.kafka_client_kwargs()
    assert Settings(kafka_security_protocol="PLAINTEXT", kafka_ssl_cafile=None,
                    kafka_ssl_certfile=None, kafka_ssl_keyfile=None,
                    kafka_ssl_key_password=None).faust_credentials() is None


def test_wrong_key_password_is_refused_at_start_naming_the_setting(monkeypatch, pki):
    _mtls_env(monkeypatch, pki, key_password="not-it")
    with pytest.raises(ValidationError, match="KAFKA_SSL_CERTFILE=.*KAFKA_SSL_KEY_PASSWORD opens"):
        Settings()


@pytest.mark.parametrize(
    ("unset", "overrides", "message"),
    [
        ("KAFKA_SSL_CERTFILE", {}, "KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE"),
        ("", {"KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE=/nonexistent/ca.pem: no such file"),
        ("", {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "does not use TLS"),
        ("KAFKA_SASL_PASSWORD", {}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ],
)
def test_inconsistent_security_settings_are_refused(monkeypatch, pki, unset, overrides, message):
    _mtls_env(monkeypatch, pki)
    if unset:
        monkeypatch.delenv(unset)
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


def test_a_file_that_is_not_a_ca_bundle_is_refused(monkeypatch, pki, tmp_path):
    _mtls_env(monkeypatch, pki)
    (tmp_path / "ca.pem").write_text("not a certificate")
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(tmp_path / "ca.pem"))
    with pytest.raises(ValidationError, match="KAFKA_SSL_CAFILE=.*not a PEM CA bundle"):
        Settings()
