"""One settings object, read once from the environment and passed in.

Every default of the product contract is a setting here, never a constant in code.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Bounds of the numeric settings (the README's table shows them next to each variable). The
# lower ones are what the code needs to work at all (a baseline of 0 hours divides by zero);
# the upper ones keep a typo (a value in ms where seconds are meant, a zero too many) from
# starting a worker that cannot work as meant.
HOUR_S = 3600
DAY_S = 24 * HOUR_S
WEEK_S = 7 * DAY_S
MIB = 1024 * 1024
MAX_INT32 = 2**31 - 1  # Kafka's sizes on the wire
MAX_PARTITIONS = 10_000
MAX_REPLICAS = 32_767  # CreateTopics' replication factor is an int16
MAX_STANDBY_REPLICAS = 8  # each is a full copy of the state on another worker
MAX_RETENTION_S = 3653 * DAY_S  # ten years
MAX_RETENTION_WEEKS = 522  # ten years
MAX_BASELINE_HOURS = 31 * 24
MAX_BATCH_EVENTS = 1_000_000
MAX_COUNT = 1_000_000_000  # views: a threshold no property reaches disables the insight
MAX_RATIO = 1_000_000.0
MAX_INTERVAL_S = 300.0
_INSTANCE_ID = re.compile(r"[A-Za-z0-9._-]{1,200}")  # GROUP_INSTANCE_ID
MAX_FETCH_BYTES = 64 * MIB
MAX_MEMORY_BYTES = 64 * 1024 * MIB


class Settings(BaseSettings):
    """Worker configuration. Field names map to upper-case environment variables.

    The docstring under each field is its description: the README's settings table is
    generated from them (``make docs``), so a setting documents itself where it is defined.
    """

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", frozen=True, use_attribute_docstrings=True,
        # nan and inf are refused for every number: `SPIKE_RATIO=nan` would disable spikes
        # without a word, `TREND_RATIO=-inf` make every week a trend.
        allow_inf_nan=False,
    )

    # --- Kafka connection --------------------------------------------------------------
    kafka_bootstrap_servers: str = "localhost:9092"
    """Kafka brokers to start from, comma separated `host:port`."""
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = (
        "PLAINTEXT"
    )
    """How every client talks to the brokers."""
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    """SASL mechanism, used with the `SASL_*` protocols."""
    kafka_sasl_username: str | None = None
    """SASL user name."""
    kafka_sasl_password: SecretStr | None = None
    """SASL password; never printed or logged."""
    kafka_ssl_cafile: Path | None = None
    """CA bundle (PEM) that verifies the brokers' certificates with the `*SSL` protocols; unset:
    the system's CAs."""
    kafka_ssl_certfile: Path | None = None
    """Client certificate (PEM) the workers present to brokers that ask for one (mutual TLS,
    `ssl.client.auth`), with the `*SSL` protocols; may hold the private key too. Unset: no
    client certificate."""
    kafka_ssl_keyfile: Path | None = None
    """Private key (PEM) of KAFKA_SSL_CERTFILE, when it is not in that file."""
    kafka_ssl_key_password: SecretStr | None = None
    """Password of an encrypted private key; never printed or logged."""

    # --- Identity, web, storage ---------------------------------------------------------
    app_id: str = "property-analytics"
    """Consumer group, and prefix of the internal topics and transactional ids: workers with the
    same id share the work."""
    worker_web_host: str = "127.0.0.1"
    """Address the HTTP server binds to."""
    worker_web_port: int = Field(6066, ge=1, le=65535)
    """HTTP port (also names the default data dir)."""
    worker_data_dir: Path | None = None
    """Local state (RocksDB), one directory per worker; unset: `./data/worker-<WORKER_WEB_PORT>`."""
    worker_canonical_url: str | None = None
    """URL the other workers use to reach this one (forwarded requests, dashboard); unset:
    `http://<WORKER_WEB_HOST>:<WORKER_WEB_PORT>`."""
    api_token: SecretStr | None = None
    """When set, every route but `/`, `/static/*`, `/health`, `/ready` and `/metrics` needs
    `Authorization: Bearer <token>`; never printed or logged. Empty: unset. A worker whose
    WORKER_WEB_HOST is not a loopback address refuses to start without it, unless
    ALLOW_UNAUTHENTICATED_HTTP is true."""
    allow_unauthenticated_http: bool = False
    """Let a worker serve its API on a non-loopback WORKER_WEB_HOST without API_TOKEN: anyone
    who reaches the port reads every answer, profiles included. Only behind something that
    guards the port (a private network, a proxy that authenticates)."""
    peer_secret: SecretStr | None = Field(None, min_length=16)
    """Key with which workers sign the requests they forward to each other (never with the
    client's token); at least 16 characters. Unset: a key derived from API_TOKEN and APP_ID."""

    # --- Topics -------------------------------------------------------------------------
    topic_partitions: int = Field(12, ge=1, le=MAX_PARTITIONS)
    """Partitions of the views topic and of every topic co-partitioned with it; must match existing
    topics."""
    topic_replication_factor: int = Field(1, ge=1, le=MAX_REPLICAS)
    """Replication factor of every topic the worker creates."""
    topic_min_insync_replicas: int | None = Field(None, ge=1, le=MAX_REPLICAS)
    """`min.insync.replicas` of every topic the worker creates: how many replicas must hold a
    write before it is acknowledged (acks=all), so that losing that many brokers minus one loses
    nothing. Unset: 2 when TOPIC_REPLICATION_FACTOR is 3 or more, else the broker's default. At
    most TOPIC_REPLICATION_FACTOR."""
    views_topic: str = "property.views"
    """Input topic of property views; its dead letters go to `<name>.dlq`."""
    property_events_topic: str = "property.events"
    """Input topic of the property aggregate's events (keyed by propertyId, co-partitioned with
    the views topic); its dead letters go to `<name>.dlq`."""
    profiles_topic: str = "user.profiles"
    """Input topic of user profiles (compacted); its dead letters go to `<name>.dlq`."""
    insights_topic: str = "analytics.insights"
    """Output topic of the insights."""
    profiles_partitions: int = Field(1, ge=1, le=MAX_PARTITIONS)
    """Partitions of the profiles topic, its dead-letter topic and the profile-rejects stage's
    changelog; must match an existing profiles topic."""
    insights_partitions: int = Field(1, ge=1, le=MAX_PARTITIONS)
    """Partitions of the insights topic, when the worker creates it."""
    views_dead_letter_topic: str | None = None
    """Dead-letter topic of the views; unset: `<VIEWS_TOPIC>.dlq`. A replay's shadow sets its
    own, so that it never writes to the live one."""
    profiles_dead_letter_topic: str | None = None
    """Dead-letter topic of the profiles; unset: `<PROFILES_TOPIC>.dlq`."""
    property_events_dead_letter_topic: str | None = None
    """Dead-letter topic of the property events; unset: `<PROPERTY_EVENTS_TOPIC>.dlq`."""

    # --- Input validation ---------------------------------------------------------------
    max_value_bytes: int = Field(64 * 1024, ge=1, le=512 * 1024)
    """Largest record value accepted, in bytes; a larger one is dead-lettered as `oversized`. At
    most 512 KiB: an accepted profile is stored in about as many bytes."""
    max_event_fields: int = Field(64, ge=16, le=10_000)
    """Most fields a `property.events` record may have, its own and its `data`'s together; more
    is `oversized`."""
    max_version_chars: int = Field(16, ge=3, le=1024)
    """Longest `version` text of a `property.events` record (it is stored with the event and
    answered as `schemaVersion`); longer is `oversized`."""
    dlq_max_message_bytes: int = Field(1024 * 1024 + 64 * 1024, ge=64 * 1024, le=MAX_INT32)
    """`max.message.bytes` of the dead-letter topics and the largest record the producers send:
    a rejected record's copy is its original bytes (up to the input topic's limit, the broker's
    1 MiB by default) plus the `dlq.*` headers. Checked against the input topics at start-up."""
    future_tolerance_seconds: float = Field(300.0, ge=0, le=DAY_S)
    """How far a view's timestamp may be ahead of the worker's clock; further is
    `future_timestamp`."""

    # --- Windows, lateness, retention (event time) --------------------------------------
    hourly_grace_seconds: int = Field(15 * 60, ge=0, le=WEEK_S)
    """How long after an hour ends, in stream time, a view still counts in it."""
    weekly_grace_seconds: int = Field(60 * 60, ge=0, le=WEEK_S)
    """How long after an ISO week ends, in stream time, a view still counts in it."""
    hourly_retention_seconds: int = Field(48 * 3600, ge=HOUR_S, le=MAX_RETENTION_S)
    """How long hourly windows are kept behind stream time. At least (SPIKE_BASELINE_HOURS + 1)
    hours + HOURLY_GRACE_SECONDS: an hour is kept while it still counts views, and so are the
    hours its spike baseline reads."""
    weekly_retention_weeks: int = Field(5, ge=2, le=MAX_RETENTION_WEEKS)
    """How many weeks weekly windows are kept behind the newest week; at least 2, since a trend
    compares a week that still counts views with the week before."""
    dedupe_horizon_seconds: int = Field(24 * 3600, ge=1, le=MAX_RETENTION_S)
    """How long, in event time, an accepted `eventId` is remembered to skip duplicates."""

    # --- Trend thresholds ---------------------------------------------------------------
    spike_min_views: int = Field(20, ge=1, le=MAX_COUNT)
    """Fewest views of a property in an hour for a `property_hourly_spike`."""
    spike_ratio: float = Field(3.0, ge=1, le=MAX_RATIO)
    """An hour's views must reach this many times the baseline for a spike."""
    spike_baseline_hours: int = Field(24, ge=1, le=MAX_BASELINE_HOURS)
    """Hours before the hour whose mean views is the spike baseline."""
    trend_min_views: int = Field(50, ge=1, le=MAX_COUNT)
    """Fewest views of a property from one segment in a week for a `segment_property_trend`."""
    trend_ratio: float = Field(2.0, ge=1, le=MAX_RATIO)
    """A week's views must reach this many times the week before's for a trend."""

    # --- Processing and performance -----------------------------------------------------
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    """The event loop: `uvloop` (faster) or the standard `asyncio` one."""
    processing_errors: Literal["continue", "fail"] = "continue"
    """What a record that makes a stage raise something unforeseen costs: `continue` sends it to
    its dead-letter topic with reason `processing_error`, rolls back its partial changes and goes
    on; `fail` stops the worker (exit status 70), which restarts from its last commit and meets
    the record again."""
    views_gap_check: bool = True
    """Seek back whenever an offset of the views topic is skipped (a check: a stage's reader
    delivers every record); costs one re-read per transaction of upstream producers that write
    transactionally."""
    batch_max_events: int = Field(2000, ge=1, le=MAX_BATCH_EVENTS)
    """Most records a stage takes in one fetch."""
    max_uncommitted_events: int = Field(4000, ge=1, le=MAX_BATCH_EVENTS)
    """Most records a stage applies ahead of its commits; past it the stage waits for the commit
    in flight and commits at once, which bounds the worker's memory when commits are slower
    than processing."""
    batch_max_seconds: float = Field(0.05, gt=0, le=5)
    """Longest a stage's fetch waits for records when none are buffered, before the stage looks
    again at the partitions opened or closed meanwhile."""
    partials_publish_seconds: float = Field(1.0, ge=0, le=MAX_INTERVAL_S)
    """Shortest interval between two publications of a partition's weekly segment shares; weekly
    answers trail by about this much."""
    views_commit_interval_seconds: float = Field(0.05, ge=0, le=MAX_INTERVAL_S)
    """The views stage commits its partitions' state, outputs and input offsets (one transaction
    per round, over every changed partition; the next round starts as soon as the last one
    ends) at most this often, and always before a revocation or a shutdown; hourly answers
    trail their views by about this much."""
    segments_commit_interval_seconds: float = Field(1.0, ge=0, le=MAX_INTERVAL_S)
    """The same for the unique-users stage; weekly unique users trail by about this much."""
    profiles_commit_interval_seconds: float = Field(1.0, ge=0, le=MAX_INTERVAL_S)
    """The same for the profile-rejects stage, which dead-letters invalid profiles."""
    properties_commit_interval_seconds: float = Field(0.1, ge=0, le=MAX_INTERVAL_S)
    """The same for the properties stage (the aggregate's state and history); property answers
    trail their events by about this much."""
    commit_interval_seconds: float = Field(1.0, gt=0, le=MAX_INTERVAL_S)
    """How often faust commits the offsets it manages itself (the stages commit theirs inside their
    transactions)."""
    commit_stall_alert_seconds: float = Field(15.0, gt=0, le=DAY_S)
    """A commit or a partition's opening that has waited on the brokers this long marks the worker
    stalled (brokers unreachable, or fewer replicas in sync than `min.insync.replicas`): logged,
    `/ready` answers 503 with the cause, `property_analytics_commits_stalled` is 1. Nothing is
    dropped meanwhile: the work waits and is retried until the brokers take it."""
    session_timeout_seconds: float = Field(10.0, ge=6, le=1800)
    """A dead worker's partitions move after this long (the broker's default bounds: 6 s to
    30 min)."""
    standby_replicas: int = Field(1, ge=0, le=MAX_STANDBY_REPLICAS)
    """Other workers that keep a copy of each partition's stores, applying its changelog as it
    is committed, so that the worker that takes a partition over restores only the tail. At
    most the group's workers minus one are used (none with one worker); 0 keeps no copies."""
    group_instance_id: str | None = None
    """Static membership of the consumer group (KIP-345): a worker restarted within
    SESSION_TIMEOUT_SECONDS takes its own partitions back, and no other worker's move. `auto`:
    `<APP_ID>-<the worker id kept in WORKER_DATA_DIR>`, so every worker has its own; any other
    value (letters, digits, `.`, `_`, `-`, at most 200) is used as is and must differ between
    the group's workers. A static worker that stops is not missed until the session timeout.
    Unset or empty: dynamic membership, every start and stop rebalances the group."""
    heartbeat_interval_seconds: float = Field(2.0, gt=0, le=600)
    """How often the worker heartbeats to the group coordinator; less than
    SESSION_TIMEOUT_SECONDS (a third of it or less is usual)."""
    fetch_max_wait_ms: int = Field(100, ge=0, le=1500)
    """How long the broker may hold a stage's fetch with no new data, which is also how long a
    busy partition may wait behind idle ones in the same fetch."""
    fetch_min_bytes: int = Field(1, ge=1, le=MAX_FETCH_BYTES)
    """The broker answers a fetch once this much data is there (or the wait is over)."""
    max_fetch_bytes: int = Field(256 * 1024, ge=1024, le=MAX_FETCH_BYTES)
    """Most bytes per partition and fetch of a stage's reader (each stage reads its topic with a
    consumer of its own)."""
    rocksdb_block_cache_bytes: int = Field(16 * 1024 * 1024, ge=MIB, le=MAX_MEMORY_BYTES)
    """RocksDB block cache of the worker's state stores, in bytes."""
    rocksdb_write_buffer_bytes: int = Field(8 * 1024 * 1024, ge=64 * 1024, le=MAX_MEMORY_BYTES)
    """RocksDB write buffer (memtable) of each state store, in bytes; at most
    ROCKSDB_MEMTABLES_BYTES."""
    rocksdb_memtables_bytes: int = Field(32 * 1024 * 1024, ge=MIB, le=MAX_MEMORY_BYTES)
    """Most bytes the memtables of all the worker's state stores hold together (one RocksDB
    write buffer manager for all of them); past it they are flushed to disk early. Bounds the
    worker's memory as the stores grow."""
    insights_memory: int = Field(500, ge=1, le=100_000)
    """Newest insights each worker keeps in memory for `/api/insights` (read from the end of the
    insights topic at start)."""

    @model_validator(mode="after")
    def _min_insync_within_replicas(self) -> Settings:
        wanted = self.topic_min_insync_replicas
        if wanted is not None and wanted > self.topic_replication_factor:
            raise ValueError(
                f"TOPIC_MIN_INSYNC_REPLICAS={wanted} exceeds TOPIC_REPLICATION_FACTOR="
                f"{self.topic_replication_factor}: no write could ever be acknowledged"
            )
        return self

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _bootstrap_addresses(cls, value: str) -> str:
        """Each comma-separated entry ``host:port``, the port 1-65535: a typo is named at
        start, not found by every client later."""
        for entry in value.split(","):
            host, sep, port = entry.strip().rpartition(":")
            if not sep or not host.strip("[]") or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(
                    f"{entry.strip()!r} is not host:port with a port 1-65535 "
                    "(several: comma separated)"
                )
        return value

    @field_validator("group_instance_id", mode="before")
    @classmethod
    def _group_instance_id(cls, value: object) -> object:
        """Empty is unset; anything else a name the broker and a log line can carry."""
        if value == "":
            return None
        if isinstance(value, str) and not _INSTANCE_ID.fullmatch(value):
            raise ValueError(
                "must be `auto` or 1-200 letters, digits, `.`, `_` or `-` (one per worker)"
            )
        return value

    @field_validator("api_token", mode="before")
    @classmethod
    def _empty_token_is_unset(cls, value: object) -> object:
        """``API_TOKEN=`` (what ``${API_TOKEN:-}`` gives in compose) is no token, not the
        empty one."""
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent_bounds(self) -> Settings:
        """The settings that bound each other (``related_problems``), by name."""
        problems = related_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def min_insync_replicas(self) -> int | None:
        """The ``min.insync.replicas`` to give the topics the worker creates; None: leave it to
        the broker. Two of three (or more) replicas by default: one broker may be lost without
        stopping writes, and an acknowledged write survives the loss of any one broker."""
        if self.topic_min_insync_replicas is not None:
            return self.topic_min_insync_replicas
        return 2 if self.topic_replication_factor >= 3 else None

    @model_validator(mode="after")
    def _check_security(self) -> Settings:
        """Refuse a connection setting that cannot work at start-up, naming the setting, rather
        than let every Kafka client fail later with a less clear error."""
        problems = security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        if self.kafka_security_protocol.endswith("SSL"):
            _ = self.kafka_ssl_context  # a bad file or key password fails here, by name
        return self

    @cached_property
    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """One TLS context for every client of the process, None without TLS."""
        if not self.kafka_security_protocol.endswith("SSL"):
            return None
        return ssl_context(
            self.kafka_ssl_cafile,
            self.kafka_ssl_certfile,
            self.kafka_ssl_keyfile,
            self.kafka_ssl_key_password,
        )

    @cached_property
    def data_dir(self) -> Path:
        return self.worker_data_dir or Path(f"./data/worker-{self.worker_web_port}")

    @cached_property
    def peer_key(self) -> bytes | None:
        """The key of the HMAC that authenticates one worker to another, or None when the
        API needs no token (then peers need nothing either).

        PEER_SECRET when set. Otherwise derived from API_TOKEN with scrypt, salted with the
        app id: every worker that accepts the token derives the same key, a holder of the key
        can do nothing the token cannot, and one captured signature is costly to turn back
        into the token by guessing. Set PEER_SECRET (a long random value) when API_TOKEN is
        short or shared with people, so that the workers' key does not depend on it.
        """
        if self.peer_secret is not None:
            return self.peer_secret.get_secret_value().encode()
        if self.api_token is None:
            return None
        return hashlib.scrypt(
            self.api_token.get_secret_value().encode(),
            salt=f"peer-key:{self.app_id}".encode(),
            n=2**14,
            r=8,
            p=1,
            dklen=32,
        )

    @property
    def dlq_views_topic(self) -> str:
        return self.views_dead_letter_topic or f"{self.views_topic}.dlq"

    @property
    def dlq_profiles_topic(self) -> str:
        return self.profiles_dead_letter_topic or f"{self.profiles_topic}.dlq"

    @property
    def dlq_property_events_topic(self) -> str:
        return self.property_events_dead_letter_topic or f"{self.property_events_topic}.dlq"

    @property
    def properties_changelog_topic(self) -> str:
        return f"{self.app_id}-properties-state-changelog"

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
    def profile_rejects_changelog_topic(self) -> str:
        return f"{self.app_id}-profile-rejects-state-changelog"

    @property
    def partials_topic(self) -> str:
        return f"{self.app_id}-segment-partials"

    def kafka_client_kwargs(self) -> dict[str, object]:
        """Connection arguments for every aiokafka client the product makes (consumers,
        producers, admin clients): the one place the security settings reach a client.

        A unit test fails when a client in app/ or bench/ is built without them."""
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
        if self.kafka_ssl_context is not None:
            kwargs["ssl_context"] = self.kafka_ssl_context
        return kwargs

    def faust_credentials(self) -> object | None:
        """The same connection settings as faust's ``broker_credentials``, for the worker's
        group consumer and producer (faust builds those clients itself)."""
        import faust

        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return None
        if protocol.startswith("SASL"):
            return faust.SASLCredentials(
                username=self.kafka_sasl_username,
                password=(
                    self.kafka_sasl_password.get_secret_value() if self.kafka_sasl_password else None
                ),
                mechanism=self.kafka_sasl_mechanism,
                ssl_context=self.kafka_ssl_context,  # None: SASL_PLAINTEXT
            )
        return faust.SSLCredentials(self.kafka_ssl_context)


def related_problems(s: Settings) -> list[str]:
    """What breaks between settings each within its own bounds, one sentence per problem."""
    problems = []
    needed = (s.spike_baseline_hours + 1) * HOUR_S + s.hourly_grace_seconds
    if s.hourly_retention_seconds < needed:
        problems.append(
            f"HOURLY_RETENTION_SECONDS={s.hourly_retention_seconds} is below "
            f"(SPIKE_BASELINE_HOURS + 1) x 3600 + HOURLY_GRACE_SECONDS = {needed}: hours still "
            "counting views, or read by the spike baseline, would be dropped"
        )
    if s.heartbeat_interval_seconds >= s.session_timeout_seconds:
        problems.append(
            f"HEARTBEAT_INTERVAL_SECONDS={s.heartbeat_interval_seconds:g} must be below "
            f"SESSION_TIMEOUT_SECONDS={s.session_timeout_seconds:g} (a third of it or less)"
        )
    if s.batch_max_events > s.max_uncommitted_events:
        problems.append(
            f"BATCH_MAX_EVENTS={s.batch_max_events} exceeds MAX_UNCOMMITTED_EVENTS="
            f"{s.max_uncommitted_events}: one fetch would pass the bound on uncommitted records"
        )
    if s.rocksdb_write_buffer_bytes > s.rocksdb_memtables_bytes:
        problems.append(
            f"ROCKSDB_WRITE_BUFFER_BYTES={s.rocksdb_write_buffer_bytes} exceeds "
            f"ROCKSDB_MEMTABLES_BYTES={s.rocksdb_memtables_bytes}: one store's memtable would "
            "pass the bound on all of them"
        )
    return problems


_SSL_FILES = ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")


def security_problems(s: Settings) -> list[str]:
    """What is inconsistent in the connection settings, one sentence per problem."""
    protocol = s.kafka_security_protocol
    problems = []
    if protocol.startswith("SASL") and (not s.kafka_sasl_username or s.kafka_sasl_password is None):
        problems.append(
            f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
        )
    tls_settings = [*_SSL_FILES, "kafka_ssl_key_password"]
    if not protocol.endswith("SSL"):
        given = [name.upper() for name in tls_settings if getattr(s, name) is not None]
        if given:
            problems.append(
                f"{', '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} does not use "
                "TLS: use SSL or SASL_SSL, or unset them"
            )
        return problems
    if s.kafka_ssl_keyfile is not None and s.kafka_ssl_certfile is None:
        problems.append("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the certificate of that key)")
    if s.kafka_ssl_key_password is not None and s.kafka_ssl_certfile is None:
        problems.append("KAFKA_SSL_KEY_PASSWORD needs KAFKA_SSL_CERTFILE (and its key)")
    for name in _SSL_FILES:
        path = getattr(s, name)
        if path is not None and not path.is_file():
            problems.append(f"{name.upper()}={path}: no such file")
    return problems


def ssl_context(
    cafile: Path | None,
    certfile: Path | None,
    keyfile: Path | None,
    key_password: SecretStr | None,
) -> ssl.SSLContext:
    """A client TLS context that verifies the brokers (and their host names) against
    ``cafile`` (the system's CAs when None) and presents ``certfile`` when given.

    A file that is not PEM, or a key that does not open with its password, is a ValueError
    that names the setting, at start-up."""
    try:
        # With a cafile, only that CA is trusted; without, the system's CAs.
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(cafile) if cafile is not None else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"KAFKA_SSL_CAFILE={cafile}: not a PEM CA bundle ({exc})") from None
    if certfile is not None:
        try:
            context.load_cert_chain(
                str(certfile),
                str(keyfile) if keyfile is not None else None,
                key_password.get_secret_value() if key_password is not None else None,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(
                f"KAFKA_SSL_CERTFILE={certfile}"
                + (f" with KAFKA_SSL_KEYFILE={keyfile}" if keyfile else "")
                + f": cannot load the client certificate and its key ({exc}); check that they"
                " are PEM, belong together, and KAFKA_SSL_KEY_PASSWORD opens the key"
            ) from None
    return context
