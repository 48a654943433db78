"""Starting a shadow at a point in time: its topics, its start offsets, one transaction.

The shadow's views stage must begin, on every partition of the views topic, at the first
record whose timestamp is at or after ``--from`` (``offsets_for_times``). Two things decide
where a stage begins, and both are set here, before any of the shadow's workers runs:

- the consumer group's committed offset, where faust's consumer starts fetching;
- the ``applied`` offset in the stage's state (restored from its changelog), below which the
  stage skips records, and from which it seeks back over a gap (``app.engine.ordering``): a
  fresh stage would otherwise seek back to offset 0 and replay everything.

Both are written in one transaction, with the manifest that records the start: the shadow is
started completely or not at all. Its other stages start fresh: the views-by-user topic is
the shadow's own, and the profiles are read whole, as by any new worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from app.engine.clients import committed_reader, partitions_of, stop_consumer
from app.engine.transactions import Outbox, write_once
from app.replay.manifest import KEY, Manifest
from app.replay.shadow import Shadow
from app.settings import Settings
from app.engine.applied import seed
from app.topics import COMPACT, MIN_INSYNC_REPLICAS, ensure_topics

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


class ReplayError(RuntimeError):
    """The replay cannot start; the message says why."""


def start_offsets(
    found: dict[int, int | None], ends: dict[int, int]
) -> dict[int, int]:
    """``offsets_for_times`` answers -> where to start: a partition with no record at or after
    the time starts at its end (it has nothing to replay)."""
    return {p: (found.get(p) if found.get(p) is not None else end) for p, end in ends.items()}


async def offsets_at(
    client_kwargs: dict[str, Any], topic: str, from_ms: int
) -> tuple[dict[int, int], dict[int, int]]:
    """(start offset, end offset) per partition of ``topic`` for a replay from ``from_ms``."""
    consumer = committed_reader(client_kwargs)
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        if not partitions:
            raise ReplayError(f"the input topic {topic} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        answers = await consumer.offsets_for_times({tp: from_ms for tp in tps})
        ends = await consumer.end_offsets(tps)
    finally:
        await stop_consumer(consumer)
    found = {
        tp.partition: (meta.offset if meta is not None else None) for tp, meta in answers.items()
    }
    end_by_partition = {tp.partition: end for tp, end in ends.items()}
    return start_offsets(found, end_by_partition), end_by_partition


async def create_manifest_topic(settings: Settings, topic: str, wait_s: float = 30.0) -> None:
    """Create the compacted manifest topic unless it exists, and wait until it is known."""
    kwargs = settings.kafka_client_kwargs()
    admin = AIOKafkaAdminClient(**kwargs)
    await admin.start()
    try:
        config = dict(COMPACT)
        if settings.min_insync_replicas is not None:
            config[MIN_INSYNC_REPLICAS] = str(settings.min_insync_replicas)
        new = NewTopic(topic, 1, settings.topic_replication_factor, topic_configs=config)
        try:
            response = await admin.create_topics([new])
            errors = response.to_object().get("topic_errors", ())
        except TopicAlreadyExistsError:
            errors = ()
        for error in errors:
            if error["error_code"] not in (0, TOPIC_ALREADY_EXISTS):
                raise ReplayError(
                    f"creating {topic} failed: error {error['error_code']} {error['error_message']}"
                )
    finally:
        await admin.close()
    consumer = committed_reader(kwargs)
    await consumer.start()
    try:
        deadline = time.monotonic() + wait_s
        while topic not in await consumer.topics():
            if time.monotonic() > deadline:
                raise ReplayError(f"{topic} was created but the brokers do not know it yet")
            await asyncio.sleep(0.2)
    finally:
        await stop_consumer(consumer)


async def start_shadow(
    shadow: Shadow,
    settings: Settings,
    from_ms: int,
    now_ms: int,
    say: Callable[[str], None] = print,
) -> Manifest:
    """Create the shadow's topics and commit its start (offsets, state, manifest) at once.

    ``settings``: the shadow's (``Shadow.settings``). Call only for a shadow without a
    manifest: on a running shadow this would rewind its offsets under its workers.
    """
    kwargs = settings.kafka_client_kwargs()
    created = await ensure_topics(settings)
    await create_manifest_topic(settings, shadow.manifest_topic)
    say(f"replay {shadow.name}: topics ready ({len(created)} created)")
    starts, ends = await offsets_at(kwargs, settings.views_topic, from_ms)
    manifest = Manifest(
        shadow=shadow.name,
        app_id=shadow.app_id,
        live_app_id=shadow.live.app_id,
        views_topic=settings.views_topic,
        from_ms=from_ms,
        start_offsets=starts,
        end_offsets=ends,
        overrides=dict(shadow.overrides),
        created_ms=now_ms,
    )
    outbox = Outbox()
    for partition, records in seed(starts).items():
        outbox.extend(settings.views_changelog_topic, partition, records)
    outbox.add(shadow.manifest_topic, 0, KEY, manifest.to_bytes())
    offsets = {TopicPartition(settings.views_topic, p): o for p, o in starts.items()}
    await write_once(f"{shadow.app_id}-replay-start", kwargs, outbox, offsets, shadow.app_id)
    log.info(
        "shadow %s starts at %s",
        shadow.app_id,
        ", ".join(f"{settings.views_topic}[{p}]@{o}" for p, o in sorted(starts.items())),
    )
    return manifest
