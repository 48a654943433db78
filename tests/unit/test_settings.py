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
