"""``profiles``: the viewers' profiles, a faust GlobalTable held whole on every worker.

Keys are userIds (UTF-8), values the profile's camelCase JSON bytes, exactly as served by
``GET /api/users/{userId}``. ``partitions=1`` and ``recovery_buffer_size=1`` follow the
GlobalTable docstring's advice against the infinite-recovery trap (FAUST_NOTES).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
import orjson
from aiokafka.admin import AIOKafkaAdminClient

from app.clients import end_offsets
from app.settings import Settings

log = logging.getLogger(__name__)


def create_profiles_table(app: faust.App, settings: Settings) -> faust.GlobalTable:
    return app.GlobalTable(
        "profiles",
        key_type=bytes,  # bytes -> the raw codec for keys and values, no JSON round trip
        value_type=bytes,
        partitions=settings.profiles_partitions,
        recovery_buffer_size=1,
        extra_topic_configs={"cleanup.policy": "compact"},
        options={
            "driver": "rocksdict",
            "block_cache_size": settings.rocksdb_block_cache_bytes,
            "write_buffer_size": settings.rocksdb_write_buffer_bytes,
        },
    )


class ProfileLookup:
    """A user's segment and stored profile, read from the GlobalTable."""

    def __init__(self, table: faust.GlobalTable) -> None:
        self._table = table

    def segment_of(self, user_id: str) -> str | None:
        raw = self._table.get(user_id.encode())
        if raw is None:
            return None
        return orjson.loads(raw).get("segment")

    def profile(self, user_id: str) -> bytes | None:
        return self._table.get(user_id.encode())


async def wait_bootstrapped(
    table: faust.GlobalTable,
    settings: Settings,
    changelog_topic: str,
    timeout_s: float = 120.0,
) -> bool:
    """Wait until every profile published before now is in this worker's GlobalTable.

    Like a Kafka Streams GlobalKTable, views are joined only once the profiles that existed
    at start-up are loaded: first the group has processed ``user.profiles`` up to its end at
    the time of the call, then this worker's copy has read the changelog up to its end.
    Returns False (and the worker goes on) if that takes longer than ``timeout_s``.
    """
    kwargs: dict[str, Any] = settings.kafka_client_kwargs()
    deadline = time.monotonic() + timeout_s
    source_ends = await end_offsets(kwargs, settings.profiles_topic)
    log.info("profiles: bootstrapping to %s", source_ends)
    admin = AIOKafkaAdminClient(**kwargs)
    await admin.start()
    try:
        while True:
            committed = await admin.list_consumer_group_offsets(settings.app_id)
            behind = {
                tp: end
                for tp, end in source_ends.items()
                if end > 0 and (committed.get(tp) is None or committed[tp].offset < end)
            }
            if not behind:
                break
            if time.monotonic() > deadline:
                log.warning("profiles not bootstrapped after %.0fs: %s behind", timeout_s, behind)
                return False
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    changelog_ends = await end_offsets(kwargs, changelog_topic)
    next_report = time.monotonic() + 5
    while True:
        lagging = {
            tp: (table.persisted_offset(tp), end)
            for tp, end in changelog_ends.items()
            if end > 0 and (table.persisted_offset(tp) or -1) < end - 1
        }
        if time.monotonic() > next_report:
            log.info("profiles: waiting for the changelog (persisted, end): %s", lagging)
            next_report = time.monotonic() + 5
        if not lagging:
            log.info("profiles bootstrapped (%s)", dict(source_ends))
            return True
        if time.monotonic() > deadline:
            log.warning("profiles changelog not read to its end after %.0fs", timeout_s)
            return False
        await asyncio.sleep(0.2)

