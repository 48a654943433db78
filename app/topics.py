"""Every topic the product uses, with partitions, replication and cleanup from settings.

Created by ``faust -A app.main create-topics`` and again at worker start, so nothing is left
to broker auto-creation. Existing topics are checked: a co-partitioned topic with the wrong
partition count is an error, not something to paper over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.settings import Settings

log = logging.getLogger(__name__)

COMPACT = {"cleanup.policy": "compact"}


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)
    copartitioned: bool = False


def topic_specs(s: Settings) -> list[TopicSpec]:
    n = s.topic_partitions
    return [
        TopicSpec(s.views_topic, n, copartitioned=True),
        TopicSpec(s.dlq_views_topic, n),
        TopicSpec(s.views_changelog_topic, n, COMPACT, copartitioned=True),
        TopicSpec(s.segments_repartition_topic, n, copartitioned=True),
        TopicSpec(s.segments_changelog_topic, n, COMPACT, copartitioned=True),
        # The profiles table's changelog is user.profiles itself; the profile-rejects stage
        # keeps its applied offsets in a changelog co-partitioned with it.
        TopicSpec(s.profiles_topic, s.profiles_partitions, COMPACT, copartitioned=True),
        TopicSpec(s.dlq_profiles_topic, s.profiles_partitions),
        TopicSpec(
            s.profile_rejects_changelog_topic, s.profiles_partitions, COMPACT, copartitioned=True
        ),
        TopicSpec(s.insights_topic, s.insights_partitions),
        TopicSpec(s.partials_topic, 1, COMPACT),
    ]


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
                    topic_configs=spec.config,
                )
                for spec in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                log.debug("another worker created some topics first")
            for spec in missing:
                log.info("created topic %s (%d partitions)", spec.name, spec.partitions)
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {t["topic"]: len(t["partitions"]) for t in described if not t.get("error_code")}
