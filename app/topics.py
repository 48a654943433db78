"""Every topic the product uses, with partitions, replication and cleanup from settings.

Created by ``faust -A app.main create-topics`` and again at worker start, so nothing is left
to broker auto-creation. Existing topics are checked: a co-partitioned topic with the wrong
partition count is an error, not something to paper over.

A dead-letter copy is the rejected record's own key and bytes plus the ``dlq.*`` headers, so
a dead-letter topic must take a record as large as its input topic takes, and then some: the
DLQ topics get ``max.message.bytes`` = DLQ_MAX_MESSAGE_BYTES, which must exceed the input
topic's limit by ``DLQ_HEADERS_HEADROOM`` (else the worker does not start), and an existing
DLQ topic with a smaller limit is raised to it (its other settings kept).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from app.settings import Settings

log = logging.getLogger(__name__)

COMPACT = {"cleanup.policy": "compact"}
MAX_MESSAGE_BYTES = "max.message.bytes"
MIN_INSYNC_REPLICAS = "min.insync.replicas"
# What a dead-letter copy adds to its input record: five headers (dlq.detail cut at 1024
# bytes, a topic name at most 249) and their framing come to under 2 KiB; the rest is spare.
DLQ_HEADERS_HEADROOM = 16 * 1024
TOPIC_ALREADY_EXISTS = 36
TOPIC_AUTHORIZATION_FAILED = 29
CREATE_HINT = (
    ". A principal that may not create them needs an administrator to run "
    "`faust -A app.main create-topics` first, or the ACLs `faust -A app.main acls` prints"
)
# DescribeConfigs' config_source of a topic's own setting (not inherited from the broker).
DYNAMIC_TOPIC_CONFIG = 1


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    copartitioned: bool = False


def dead_letter_topics(s: Settings) -> dict[str, str]:
    """Each dead-letter topic and the input topic whose rejected records it holds."""
    return {
        s.dlq_views_topic: s.views_topic,
        s.dlq_profiles_topic: s.profiles_topic,
        s.dlq_property_events_topic: s.property_events_topic,
    }


def topic_specs(s: Settings) -> list[TopicSpec]:
    n = s.topic_partitions
    dlq = {MAX_MESSAGE_BYTES: str(s.dlq_max_message_bytes)}
    return [
        TopicSpec(s.views_topic, n, copartitioned=True),
        TopicSpec(s.dlq_views_topic, n, dlq),
        TopicSpec(s.views_changelog_topic, n, COMPACT, copartitioned=True),
        TopicSpec(s.segments_repartition_topic, n, copartitioned=True),
        # The properties stage's input: partition p of it and of the views is one worker's
        # (faust assigns topics of one partition count together), whose views read it.
        TopicSpec(s.property_events_topic, n, copartitioned=True),
        TopicSpec(s.dlq_property_events_topic, n, dlq),
        TopicSpec(s.properties_changelog_topic, n, COMPACT, copartitioned=True),
        TopicSpec(s.segments_changelog_topic, n, COMPACT, copartitioned=True),
        # The profiles table's changelog is user.profiles itself; the profile-rejects stage
        # keeps its applied offsets in a changelog co-partitioned with it.
        TopicSpec(s.profiles_topic, s.profiles_partitions, COMPACT, copartitioned=True),
        TopicSpec(s.dlq_profiles_topic, s.profiles_partitions, dlq),
        TopicSpec(
            s.profile_rejects_changelog_topic, s.profiles_partitions, COMPACT, copartitioned=True
        ),
        TopicSpec(s.insights_topic, s.insights_partitions),
        TopicSpec(s.partials_topic, 1, COMPACT),
    ]


def creation_config(spec: TopicSpec, s: Settings) -> dict[str, str]:
    """The settings a topic is created with: its own, plus ``min.insync.replicas`` when the
    settings ask for one (2 on three replicas or more, see ``Settings.min_insync_replicas``)."""
    config = dict(spec.config)
    if s.min_insync_replicas is not None:
        config[MIN_INSYNC_REPLICAS] = str(s.min_insync_replicas)
    return config


class TopicMismatch(RuntimeError):
    pass


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; verify partition counts of existing ones. Returns those created."""
    admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
    await admin.start()
    try:
        existing = await _partition_counts(admin)
        missing = [spec for spec in topic_specs(settings) if spec.name not in existing]
        problems = [
            f"{spec.name} has {existing[spec.name]} partitions, expected {spec.partitions}"
            for spec in topic_specs(settings)
            if spec.name in existing and spec.copartitioned and existing[spec.name] != spec.partitions
        ]
        if problems:
            raise TopicMismatch(
                "; ".join(problems)
                + " (TOPIC_PARTITIONS and PROFILES_PARTITIONS must match the existing topics)"
            )
        if missing:
            new = [
                NewTopic(
                    spec.name,
                    spec.partitions,
                    settings.topic_replication_factor,
                    topic_configs=creation_config(spec, settings),
                )
                for spec in missing
            ]
            try:
                response = await admin.create_topics(new)
            except TopicAlreadyExistsError:
                log.debug("another worker created some topics first")
            else:
                refused = creation_problems(response.to_object()["topic_errors"])
                if refused:
                    raise TopicMismatch(
                        "creating topics failed: " + "; ".join(refused) + CREATE_HINT
                    )
            for spec in missing:
                log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
        await _ensure_dead_letter_limits(admin, settings)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


def creation_problems(topic_errors: list[dict]) -> list[str]:
    """The topics a CreateTopics answer refused, with the broker's reason; a topic another
    worker created a moment earlier is not a problem."""
    return [
        f"{err['topic']}: {err.get('error_message') or 'error'} (error {err['error_code']})"
        for err in topic_errors
        if err["error_code"] not in (0, TOPIC_ALREADY_EXISTS)
    ]


def dead_letter_limit_problem(
    dlq_topic: str, dlq_limit: int, input_topic: str, input_limit: int
) -> str | None:
    """Why ``dlq_limit`` cannot hold every rejected record of ``input_topic``, if it cannot."""
    needed = input_limit + DLQ_HEADERS_HEADROOM
    if dlq_limit >= needed:
        return None
    return (
        f"{dlq_topic} must take any record of {input_topic} ({MAX_MESSAGE_BYTES}={input_limit}) "
        f"plus {DLQ_HEADERS_HEADROOM} bytes of dead-letter headers: set DLQ_MAX_MESSAGE_BYTES "
        f"to at least {needed} (it is {dlq_limit})"
    )


def raised_limit(current: dict[str, str], wanted: int) -> dict[str, str] | None:
    """The topic settings to write for a topic whose ``current`` own settings (its dynamic
    overrides, all of them: the AlterConfigs request replaces the whole set) and effective
    ``max.message.bytes`` are given; None if its limit is already at least ``wanted``."""
    if int(current[MAX_MESSAGE_BYTES]) >= wanted:
        return None
    return {**current, MAX_MESSAGE_BYTES: str(wanted)}


async def _ensure_dead_letter_limits(admin: AIOKafkaAdminClient, settings: Settings) -> None:
    """Refuse to start if a DLQ could not hold its input's records; raise a DLQ's limit that
    is below DLQ_MAX_MESSAGE_BYTES (a topic made by an older version, or by hand)."""
    wanted = settings.dlq_max_message_bytes
    pairs = dead_letter_topics(settings)
    configs = await topic_configs(admin, [*pairs, *pairs.values()])
    problems = [
        problem
        for dlq_topic, input_topic in pairs.items()
        if (
            problem := dead_letter_limit_problem(
                dlq_topic, wanted, input_topic, int(configs[input_topic][0][MAX_MESSAGE_BYTES])
            )
        )
    ]
    if problems:
        raise TopicMismatch("; ".join(problems))
    for dlq_topic in pairs:
        effective, overrides = configs[dlq_topic]
        new = raised_limit({**overrides, MAX_MESSAGE_BYTES: effective[MAX_MESSAGE_BYTES]}, wanted)
        if new is None:
            continue
        resource = ConfigResource(ConfigResourceType.TOPIC, dlq_topic, new)
        errors = [
            (res["error_code"], res["error_message"])
            for response in await admin.alter_configs([resource])
            for res in response.to_object()["resources"]
            if res["error_code"]
        ]
        if errors:
            raise TopicMismatch(
                f"{dlq_topic} has {MAX_MESSAGE_BYTES}={effective[MAX_MESSAGE_BYTES]}, below "
                f"DLQ_MAX_MESSAGE_BYTES={wanted}, and raising it failed {errors}: raise it with "
                f"kafka-configs.sh --alter --entity-type topics --entity-name {dlq_topic} "
                f"--add-config {MAX_MESSAGE_BYTES}={wanted}"
            )
        log.warning(
            "raised %s of %s from %s to %d (DLQ_MAX_MESSAGE_BYTES)",
            MAX_MESSAGE_BYTES, dlq_topic, effective[MAX_MESSAGE_BYTES], wanted,
        )


async def topic_configs(
    admin: AIOKafkaAdminClient,
    topics: list[str],
    patience_s: float = 30.0,
    pause_s: float = 0.25,
) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Per topic: its effective settings and its own ones (dynamic overrides).

    A topic created a moment ago may still be unknown to the broker that answers (error 3
    for a few seconds after a broker start): asked again every ``pause_s`` for up to
    ``patience_s`` seconds.
    """
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    failed: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience_s
    while True:
        pending = [t for t in topics if t not in found]
        resources = [ConfigResource(ConfigResourceType.TOPIC, t, None) for t in pending]
        failed = {}
        for response in await admin.describe_configs(resources):
            for res in response.to_object()["resources"]:
                if res["error_code"] == TOPIC_AUTHORIZATION_FAILED:
                    # Not a topic that is still being created: asking again cannot help.
                    raise TopicMismatch(
                        f"may not read the settings of {res['resource_name']} "
                        f"({res['error_message']}): a worker needs DescribeConfigs on it, see "
                        "`faust -A app.main acls`"
                    )
                if res["error_code"]:
                    failed[res["resource_name"]] = (
                        f"error {res['error_code']} {res['error_message']}"
                    )
                    continue
                entries = res["config_entries"]
                effective = {e["config_names"]: e["config_value"] for e in entries}
                overrides = {
                    e["config_names"]: e["config_value"] for e in entries if _own_setting(e)
                }
                found[res["resource_name"]] = (effective, overrides)
        if len(found) == len(topics):
            return found
        if loop.time() >= deadline:
            raise TopicMismatch(
                f"cannot read the settings of {failed} after {patience_s:.0f}s"
            )
        log.info("the broker does not know %s yet; asking again", sorted(failed))
        await asyncio.sleep(pause_s)


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}


def _own_setting(entry: dict) -> bool:
    """A topic's own setting, not the broker's default (version 0 answers say ``is_default``)."""
    source = entry.get("config_source")
    if source is None:
        return not entry.get("is_default") and not entry.get("read_only")
    return source == DYNAMIC_TOPIC_CONFIG and entry.get("config_value") is not None
