"""A shadow: the same pipeline under another app id, with outputs of its own.

A replay runs the product a second time over the same input topics, from a chosen time, so
that its answers can be compared with the live ones before anything changes for users. Every
name the product derives from ``APP_ID`` (consumer group, transactional ids, changelogs, the
views-by-user repartition topic, the segment shares) is the shadow's own once its app id is
``<APP_ID>-shadow-<name>``; the three outputs whose names do not derive from it (insights and
the two dead-letter topics) get the prefix ``<name>.``. Nothing a shadow writes can reach a
topic of the live app, and the shadow's app id keeps the live one as its prefix, so ACLs on
the ``<APP_ID>`` prefix cover its groups and transactional ids.

Settings may differ from the live ones (``--set SPIKE_RATIO=2.5``): those are what a replay is
for. The input, the cluster and the names above may not: they decide what is replayed and
where it goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.settings import Settings
from app.settings_errors import SettingsError, load_settings

# A shadow's name goes into topic names and an app id: letters, digits, '-' and '_' (no '.',
# which separates the prefix of its topic names from the live name).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}")

# Settings a shadow takes from the live app as they are: the cluster and the input (the
# replay is of the live input), the names the shadow derives itself, and the per-worker ones
# (every worker of a shadow gets its own port and data dir from the replay command).
FIXED = frozenset({
    "kafka_bootstrap_servers", "kafka_security_protocol", "kafka_sasl_mechanism",
    "kafka_sasl_username", "kafka_sasl_password", "kafka_ssl_cafile",
    "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_ssl_key_password",
    "app_id", "views_topic", "profiles_topic", "insights_topic", "property_events_topic",
    "views_dead_letter_topic", "profiles_dead_letter_topic", "property_events_dead_letter_topic",
    "topic_partitions", "profiles_partitions",
    "worker_web_port", "worker_data_dir", "worker_canonical_url",
})


class ShadowError(ValueError):
    """A shadow name or setting that cannot be used; the message says why."""


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ShadowError(
            f"shadow name {name!r}: 1 to 48 letters, digits, '-' or '_', starting with a "
            "letter or digit"
        )
    return name


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """``["SPIKE_RATIO=2.5", ...]`` -> ``{"SPIKE_RATIO": "2.5"}``: known, changeable settings
    only (their values are checked by ``Shadow.settings``)."""
    out: dict[str, str] = {}
    fields = Settings.model_fields
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip().upper()
        if not sep or not name:
            raise ShadowError(f"--set {item!r}: expected NAME=VALUE, e.g. SPIKE_RATIO=2.5")
        field_name = name.lower()
        if field_name not in fields:
            raise ShadowError(f"--set {name}: no such setting (see the README's settings table)")
        if field_name in FIXED:
            raise ShadowError(
                f"--set {name}: a shadow takes {name} from the live app (it decides the input, "
                "the cluster or the shadow's own names)"
            )
        if name in out and out[name] != value:
            raise ShadowError(f"--set {name} given twice with different values")
        out[name] = value
    return out


@dataclass(frozen=True)
class Shadow:
    """The shadow ``name`` of the live app configured by ``live``."""

    name: str
    live: Settings
    overrides: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name)
        parse_overrides(f"{k}={v}" for k, v in self.overrides.items())

    @property
    def app_id(self) -> str:
        return f"{self.live.app_id}-shadow-{self.name}"

    def output(self, live_topic: str) -> str:
        """The shadow's name for one of the live app's output topics."""
        return f"{self.name}.{live_topic}"

    @property
    def manifest_topic(self) -> str:
        """Where the replay records what it started (``app.replay.manifest``)."""
        return f"{self.app_id}-replay"

    def derived_env(self) -> dict[str, str]:
        """The names that make a worker a worker of this shadow."""
        return {
            "APP_ID": self.app_id,
            "INSIGHTS_TOPIC": self.output(self.live.insights_topic),
            "VIEWS_DEAD_LETTER_TOPIC": self.output(self.live.dlq_views_topic),
            "PROFILES_DEAD_LETTER_TOPIC": self.output(self.live.dlq_profiles_topic),
            "PROPERTY_EVENTS_DEAD_LETTER_TOPIC": self.output(self.live.dlq_property_events_topic),
        }

    def env(self) -> dict[str, str]:
        """Environment variables to add to the live workers' environment: derived names, then
        the overrides."""
        return {**self.derived_env(), **self.overrides}

    def settings(self, **per_worker: Any) -> Settings:
        """The shadow's Settings, validated like any worker's: the live ones with the shadow's
        names and overrides (and ``per_worker`` fields such as ``worker_web_port``)."""
        values = self.live.model_dump()
        values.update({k.lower(): v for k, v in self.env().items()})
        values.update(per_worker)
        try:
            return load_settings(**values)
        except SettingsError as exc:
            raise ShadowError(f"invalid settings for shadow {self.name!r}: {exc}") from None


def describe_overrides(overrides: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "the live settings"
