"""A backup of the product's topic configuration, and its restore on another cluster.

``export-topics`` writes, for every topic of the product that exists (``app.topics``), its
partition count, replication factor and own settings (the topic-level overrides, not the
broker's defaults) as one JSON document. ``apply-topics`` reads such a document and, on the
cluster it is pointed at, creates the topics that are missing exactly so and checks those that
exist: a different partition count is a mismatch (keys would land in other partitions), as
is a setting whose value differs. It never changes an existing topic.

A disaster-recovery cluster prepared this way takes mirrored input, and the product started
on it finds its topics as it expects them (docs/disaster-recovery.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.topics import topic_configs

FORMAT = 1
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")

CREATE, CREATED, OK, DIFFERS, MISSING = "create", "created", "ok", "differs", "missing"


class BadDocument(ValueError):
    """A topics document this version cannot use; the message says where."""


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "partitions": self.partitions,
            "replicationFactor": self.replication_factor,
            "configs": dict(sorted(self.configs.items())),
        }


@dataclass(frozen=True)
class Step:
    topic: TopicState
    action: str  # CREATE, OK, DIFFERS (MISSING with --check)
    problems: tuple[str, ...] = ()
    warning: str | None = None  # what was changed from the document, and why


MIN_INSYNC = "min.insync.replicas"


def fitted_configs(
    configs: Mapping[str, str], replication_factor: int
) -> tuple[dict[str, str], str | None]:
    """``configs`` for a topic with ``replication_factor`` replicas: a ``min.insync.replicas``
    above it is lowered to it, with the sentence that says so (else None).

    Kafka creates a topic whose min.insync.replicas exceeds its replicas without a word. A
    broker that enforces the setting as written then acknowledges no acks=all write there;
    Kafka 4.4 caps it at the replicas the partition has, so the topic enforces a value other
    than the one it shows. Lowering it keeps what the setting is for (an acknowledged write
    is on every replica there is) on a cluster given fewer replicas with --replication-factor,
    as the operator asked; refusing would leave the DR cluster without the topic."""
    value = configs.get(MIN_INSYNC)
    try:
        wanted = int(value) if value is not None else None
    except ValueError:
        return dict(configs), None  # not a number: the broker refuses it, by name
    if wanted is None or wanted <= replication_factor:
        return dict(configs), None
    return {**configs, MIN_INSYNC: str(replication_factor)}, (
        f"{MIN_INSYNC}={wanted} lowered to {replication_factor}, the replication factor it is "
        "applied with: no more replicas than that can ever be in sync"
    )


def document(topics: Iterable[TopicState], about: Mapping[str, Any]) -> bytes:
    doc = {"format": FORMAT, **about, "topics": [t.to_wire() for t in topics]}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


def parse_document(raw: bytes) -> list[TopicState]:
    """The topics of an ``export-topics`` document, every field checked."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadDocument(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadDocument(f"not a topics document of format {FORMAT} (from export-topics)")
    topics = doc.get("topics")
    if not isinstance(topics, list):
        raise BadDocument("'topics' must be a list")
    out, names = [], set()
    for i, entry in enumerate(topics):
        where = f"topics[{i}]"
        if not isinstance(entry, dict):
            raise BadDocument(f"{where} is not an object")
        name = entry.get("name")
        if not isinstance(name, str) or not _TOPIC.fullmatch(name) or name in (".", ".."):
            raise BadDocument(f"{where}.name {name!r} is not a topic name")
        if name in names:
            raise BadDocument(f"{where}: topic {name} twice")
        names.add(name)
        for key in ("partitions", "replicationFactor"):
            value = entry.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
                raise BadDocument(f"{where}.{key} of {name} must be a positive integer")
        configs = entry.get("configs", {})
        if not isinstance(configs, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in configs.items()
        ):
            raise BadDocument(f"{where}.configs of {name} must map names to strings")
        out.append(TopicState(name, entry["partitions"], entry["replicationFactor"], configs))
    return out


def plan(
    wanted: Iterable[TopicState],
    existing: Mapping[str, TopicState],
    effective: Mapping[str, Mapping[str, str]],
    replication_factor: int | None = None,
    check_only: bool = False,
) -> list[Step]:
    """What to do with each wanted topic on a cluster holding ``existing`` (their effective
    settings in ``effective``). ``replication_factor`` replaces the exported one (a smaller DR
    cluster); a ``min.insync.replicas`` above the replication factor is lowered to it
    (``fitted_configs``), for the topics created and those checked."""
    steps = []
    for topic in wanted:
        rf = replication_factor or topic.replication_factor
        configs, warning = fitted_configs(topic.configs, rf)
        target = TopicState(topic.name, topic.partitions, rf, configs)
        have = existing.get(topic.name)
        if have is None:
            steps.append(Step(target, MISSING if check_only else CREATE, warning=warning))
            continue
        problems = []
        if have.partitions != topic.partitions:
            problems.append(f"partitions {have.partitions}, wanted {topic.partitions}")
        if have.replication_factor != rf:
            problems.append(f"replication factor {have.replication_factor}, wanted {rf}")
        settings = effective.get(topic.name, {})
        for key, value in sorted(configs.items()):
            if settings.get(key) != value:
                problems.append(f"{key}={settings.get(key)}, wanted {value}")
        steps.append(Step(target, DIFFERS if problems else OK, tuple(problems), warning))
    return steps


async def describe(
    admin: AIOKafkaAdminClient, names: Iterable[str]
) -> tuple[dict[str, TopicState], dict[str, dict[str, str]]]:
    """The topics of ``names`` that exist: their state (own settings only), and their
    effective settings."""
    wanted = set(names)
    listed = set(await admin.list_topics()) & wanted
    if not listed:
        return {}, {}
    described = await admin.describe_topics(sorted(listed))
    shapes = {
        t["topic"]: (
            len(t["partitions"]),
            max((len(p["replicas"]) for p in t["partitions"]), default=0),
        )
        for t in described
        if not t.get("error_code")
    }
    configs = await topic_configs(admin, sorted(shapes))
    states = {
        name: TopicState(name, partitions, rf, dict(configs[name][1]))
        for name, (partitions, rf) in shapes.items()
    }
    return states, {name: configs[name][0] for name in shapes}


async def create(admin: AIOKafkaAdminClient, topics: list[TopicState]) -> dict[str, str]:
    """Create ``topics``; returns the error of each one the broker refused."""
    if not topics:
        return {}
    response = await admin.create_topics(
        [
            NewTopic(t.name, t.partitions, t.replication_factor, topic_configs=t.configs)
            for t in topics
        ]
    )
    return {
        err["topic"]: f"error {err['error_code']} {err['error_message']}"
        for err in response.to_object().get("topic_errors", ())
        if err["error_code"]
    }
