"""One settings object, read once from the environment and passed in.

Every default of the product contract is a setting here, never a constant in code.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Worker configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", frozen=True)

    # --- Kafka connection --------------------------------------------------------------
    kafka_bootstrap_servers: str = "localhost:9092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    # --- Identity, web, storage ---------------------------------------------------------
    app_id: str = "property-analytics"
    worker_web_host: str = "127.0.0.1"
    worker_web_port: int = Field(6066, ge=1, le=65535)
    worker_data_dir: Path | None = None
    worker_canonical_url: str | None = None
    api_token: SecretStr | None = None

    # --- Topics -------------------------------------------------------------------------
    topic_partitions: int = Field(12, ge=1)
    topic_replication_factor: int = Field(1, ge=1)
    views_topic: str = "property.views"
    profiles_topic: str = "user.profiles"
    insights_topic: str = "analytics.insights"
    profiles_partitions: int = Field(1, ge=1)
    # How often a worker checks that its profiles GlobalTable has read its changelog to the
    # end (a record faust lost at the very end is read directly after two checks).
    profiles_audit_seconds: float = Field(5.0, gt=0)
    insights_partitions: int = Field(1, ge=1)

    # --- Input validation ---------------------------------------------------------------
    # An accepted profile is stored (changelog) as about as many bytes: well under the
    # broker's 1 MiB record limit.
    max_value_bytes: int = Field(64 * 1024, ge=1, le=512 * 1024)
    # ``max.message.bytes`` of the dead-letter topics, and the largest record the producers
    # send: a rejected record's copy is its original bytes (up to the input topic's limit,
    # the broker's 1 MiB by default) plus the dlq.* headers. Checked against the input topics
    # at start-up (app.topics).
    dlq_max_message_bytes: int = Field(1024 * 1024 + 64 * 1024, ge=64 * 1024)
    future_tolerance_seconds: float = 300.0

    # --- Windows, lateness, retention (event time) --------------------------------------
    hourly_grace_seconds: int = 15 * 60
    weekly_grace_seconds: int = 60 * 60
    hourly_retention_seconds: int = 48 * 3600
    weekly_retention_weeks: int = 5
    dedupe_horizon_seconds: int = 24 * 3600

    # --- Trend thresholds ---------------------------------------------------------------
    spike_min_views: int = 20
    spike_ratio: float = 3.0
    spike_baseline_hours: int = 24
    trend_min_views: int = 50
    trend_ratio: float = 2.0

    # --- Processing and performance -----------------------------------------------------
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Seek back whenever a views offset is skipped (see app.pipeline.ordering); costs one
    # re-read per transaction of upstream producers, if they write transactionally.
    views_gap_check: bool = True
    batch_max_events: int = Field(2000, ge=1)
    batch_max_seconds: float = Field(0.05, gt=0)
    partials_publish_seconds: float = Field(1.0, ge=0)
    # Each stage commits its partitions' state, outputs and offsets (one transaction per
    # partition) at most this often; hourly answers trail their views by about this much.
    views_commit_interval_seconds: float = Field(0.1, ge=0)
    segments_commit_interval_seconds: float = Field(1.0, ge=0)
    table_standby_replicas: int = Field(1, ge=0)
    commit_interval_seconds: float = Field(1.0, gt=0)
    # A dead worker's partitions move after this long (the broker's minimum is 6 s).
    session_timeout_seconds: float = Field(10.0, ge=6)
    heartbeat_interval_seconds: float = Field(2.0, gt=0)
    max_poll_records: int = Field(5000, ge=1)
    # How long the broker may hold a fetch with no new data (faust fixes 1500 ms; see
    # app.faust_fixes.tune_worker_consumer): also how long a busy partition may wait.
    fetch_max_wait_ms: int = Field(100, ge=0, le=1500)
    # The broker answers a fetch once this much data is there (or the wait is over).
    fetch_min_bytes: int = Field(1, ge=1)
    # Per partition and fetch: small enough that one topic's backlog does not starve another
    # topic's agent (aiokafka hands out a fetch response partition by partition).
    max_fetch_bytes: int = Field(256 * 1024, ge=1024)
    stream_buffer_maxsize: int = Field(20000, ge=1)
    rocksdb_block_cache_bytes: int = 16 * 1024 * 1024
    rocksdb_write_buffer_bytes: int = 8 * 1024 * 1024
    insights_memory: int = Field(500, ge=1)

    @cached_property
    def data_dir(self) -> Path:
        return self.worker_data_dir or Path(f"./data/worker-{self.worker_web_port}")

    @property
    def dlq_views_topic(self) -> str:
        return f"{self.views_topic}.dlq"

    @property
    def dlq_profiles_topic(self) -> str:
        return f"{self.profiles_topic}.dlq"

    @property
    def views_changelog_topic(self) -> str:
        return f"{self.app_id}-views-state-changelog"

    @property
    def segments_repartition_topic(self) -> str:
        return f"{self.app_id}-views-by-user-repartition"

    @property
    def segments_changelog_topic(self) -> str:
        return f"{self.app_id}-segment-users-state-changelog"

    @property
    def partials_topic(self) -> str:
        return f"{self.app_id}-segment-partials"

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Connection arguments for aiokafka clients (security passed through)."""
        kwargs: dict[str, object] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_username
            kwargs["sasl_plain_password"] = (
                self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
            )
        if self.kafka_security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            kwargs["ssl_context"] = create_ssl_context(
                cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
            )
        return kwargs
