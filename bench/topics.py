"""A run's names: the environment its workers share (fresh topics, a random run id in every
name), the settings that name the same topics, and the deletion of them all at the end."""

from __future__ import annotations

import sys
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from app.settings import Settings


def run_env(tag: str, bootstrap: str, partitions: int) -> dict[str, str]:
    """The input topics of run ``tag``, shared by all its apps."""
    prefix = f"bench-{tag}"
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "VIEWS_TOPIC": f"{prefix}-views",
        "PROFILES_TOPIC": f"{prefix}-profiles",
        "PROPERTY_EVENTS_TOPIC": f"{prefix}-property-events",
        "TOPIC_PARTITIONS": str(partitions),
    }


def app_env(base: dict[str, str], tag: str, name: str) -> dict[str, str]:
    """``base`` and an app of its own (group, state, insights topic): ``bench-<tag>-<name>``."""
    app_id = f"bench-{tag}-{name}"
    return {**base, "APP_ID": app_id, "INSIGHTS_TOPIC": f"{app_id}-insights"}


def settings_of(env: dict[str, str]) -> Settings:
    """The settings a worker started with ``env`` (``app_env``) reads."""
    return Settings(
        kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
        app_id=env["APP_ID"],
        views_topic=env["VIEWS_TOPIC"],
        profiles_topic=env["PROFILES_TOPIC"],
        property_events_topic=env["PROPERTY_EVENTS_TOPIC"],
        insights_topic=env["INSIGHTS_TOPIC"],
        topic_partitions=int(env["TOPIC_PARTITIONS"]),
    )


async def delete_run_topics(client_kwargs: dict[str, Any], tag: str) -> None:
    """Delete every topic of run ``tag``; a failure is said, not raised."""
    admin = AIOKafkaAdminClient(**client_kwargs)
    try:
        await admin.start()
        mine = [t for t in await admin.list_topics() if f"bench-{tag}" in t]
        if mine:
            await admin.delete_topics(mine)
    except Exception as exc:  # noqa: BLE001 - leftover topics are a nuisance, not a failure
        print(f"could not delete the run's topics: {exc!r}", file=sys.stderr)
    finally:
        await admin.close()
