"""``profiles``: the viewers' profiles, a faust GlobalTable held whole on every worker.

Keys are userIds (UTF-8), values the profile's camelCase JSON bytes, exactly as served by
``GET /api/users/{userId}``. ``partitions=1`` and ``recovery_buffer_size=1`` follow the
GlobalTable docstring's advice against the infinite-recovery trap (FAUST_NOTES).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import faust
import orjson
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP

from app import codec
from app.clients import committed_reader, end_offsets, stop_consumer
from app.models.events import ProfileDeleted, Rejection
from app.settings import Settings
from app.tables.changelog_gaps import ChangelogSequencer, Gap
from app.topics import profiles_changelog_topic

log = logging.getLogger(__name__)

# Table keys of the writer's bookkeeping (app.pipeline.profiles) start with a byte that UTF-8
# never contains: no userId can be one, and the HTTP API cannot reach them.
MARKER_PREFIX = b"\xff"


def marker_key(partition: int) -> bytes:
    """The table key under which the writer keeps the next offset of ``user.profiles``."""
    return MARKER_PREFIX + b"next-offset:%d" % partition


async def load_segments(settings: Settings) -> dict[str, str | None]:
    """userId -> segment (None: deleted) for every profile in ``user.profiles`` right now."""
    kwargs: dict[str, Any] = settings.kafka_client_kwargs()
    ends = await end_offsets(kwargs, settings.profiles_topic)
    segments: dict[str, str | None] = {}
    if not any(ends.values()):
        return segments
    started = time.monotonic()
    consumer = committed_reader(kwargs, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        await consumer.seek_to_beginning(*ends)
        remaining = {tp for tp, end in ends.items() if end > 0}
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        continue
                    profile = codec.decode_profile(
                        record.key, record.value, max_bytes=settings.max_value_bytes
                    )
                    if isinstance(profile, ProfileDeleted):
                        segments[profile.user_id] = None
                    elif not isinstance(profile, Rejection):
                        segments[profile.user_id] = profile.segment
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
    finally:
        await stop_consumer(consumer)
    log.info(
        "profiles: %d read at start-up in %.1fs", len(segments), time.monotonic() - started
    )
    return segments


class _ChangelogEvent(NamedTuple):
    """The part of a faust event that applying a changelog record reads (raw bytes: the
    table's keys and values are bytes, so faust's stores read either)."""

    key: bytes | None
    value: bytes | None
    message: Any


class ProfilesTable(faust.GlobalTable):
    """The GlobalTable, applying its changelog in offset order with nothing skipped, and
    telling ``on_change`` which keys changed, however they changed: written or deleted here,
    or read from the changelog (other workers' writes, recovery).

    faust can lose changelog records on their way to the table (``app.tables.changelog_gaps``):
    records after such a gap wait in ``sequencer`` until ``on_gap`` (a ``ChangelogRepair``)
    has read the gap again and called ``apply_in_order``.

    ``writing`` holds the partitions whose source records this worker applies (the
    ``ProfilesWriter`` of their ``user.profiles`` partition): their changelog records are its
    own writes, already in the store, and applying one read back late would undo a newer
    write of the same key. The writer resumes from the offset recorded in the table, so what
    an earlier owner wrote after it is written again here.
    """

    on_change: Callable[[Iterable[bytes]], None] | None = None
    on_gap: Callable[[Gap], None] | None = None
    sequencer: ChangelogSequencer
    writing: set[int]

    def on_key_set(self, key: bytes, value: bytes) -> None:
        super().on_key_set(key, value)
        self._changed((key,))

    def on_key_del(self, key: bytes) -> None:
        super().on_key_del(key)
        self._changed((key,))

    def apply_changelog_batch(self, batch: Iterable[faust.EventT]) -> None:
        messages = [event.message for event in batch]
        writing = self.writing
        for message in messages:
            if message.partition in writing:  # our own write, read back: already applied
                self.sequencer.passed(message.partition, message.offset)
        ready, gaps = self.sequencer.admit(m for m in messages if m.partition not in writing)
        self.apply_in_order(ready)
        for gap in gaps:
            log.debug("profiles changelog: offsets %d-%d of partition %d not received (lost "
                      "or compacted): reading them directly", gap.start, gap.until, gap.partition)
            if self.on_gap is not None:
                self.on_gap(gap)

    def apply_in_order(self, messages: list) -> None:
        """Apply changelog records (faust ``Message``s) the sequencer has put in order, except
        those of partitions this worker writes."""
        messages = [m for m in messages if m.partition not in self.writing]
        if messages:
            super().apply_changelog_batch([_ChangelogEvent(m.key, m.value, m) for m in messages])
            self._changed(m.key for m in messages)

    def _changed(self, keys: Iterable[bytes]) -> None:
        if self.on_change is not None:
            self.on_change(k for k in keys if k is not None and not k.startswith(MARKER_PREFIX))


def create_profiles_table(app: faust.App, settings: Settings) -> ProfilesTable:
    # As app.GlobalTable() does, with our class.
    table = ProfilesTable(
        app,
        name="profiles",
        beacon=app.tables.beacon,
        standby_buffer_size=1,
        is_global=True,
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
    changelog = profiles_changelog_topic(settings)
    table.writing = set()
    table.sequencer = ChangelogSequencer(
        lambda partition: table.persisted_offset(TP(changelog, partition))
    )
    return app.tables.add(table)


_UNCACHED = object()
_ABSENT = object()  # cached: the user is not in the table


class ProfileLookup:
    """A user's segment and stored profile, read from the GlobalTable.

    Until this worker's GlobalTable has caught up with ``user.profiles`` (on a first start
    the profiles agent is still loading them), segments also come from ``startup``: every
    profile published before the worker started, read directly at start-up. That way views
    are joined like with a bootstrapped Kafka Streams GlobalKTable, with no pause and no
    seek of the views stream (faust's seek races with its fetch loop and loses records).

    Segments read from the table are cached (every view asks; a faust store read and a JSON
    decode cost about half of a view's processing): ``changed`` drops the keys the table
    reports changed; the cache is emptied when it reaches ``cache_size`` users.
    """

    def __init__(self, table: Mapping[bytes, bytes], cache_size: int = 200_000) -> None:
        self._table = table
        self._cache: dict[str, object] = {}  # userId -> segment, None or _ABSENT
        self._cache_size = cache_size
        self.startup: dict[str, str | None] | None = None

    def segment_of(self, user_id: str) -> str | None:
        segment = self._cache.get(user_id, _UNCACHED)
        if segment is _UNCACHED:
            raw = self._table.get(user_id.encode())
            segment = orjson.loads(raw).get("segment") if raw is not None else _ABSENT
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[user_id] = segment
        if segment is not _ABSENT:
            return segment  # type: ignore[return-value]
        startup = self.startup
        return startup.get(user_id) if startup is not None else None

    def changed(self, keys: Iterable[bytes]) -> None:
        pop = self._cache.pop
        for key in keys:
            if key is not None:
                pop(key.decode(), None)

    def deleted(self, user_id: str) -> None:
        """``user_id`` was deleted: the startup snapshot must not answer for it either."""
        if self.startup is not None:
            self.startup[user_id] = None

    def forget_startup(self) -> None:
        """The GlobalTable holds everything the startup snapshot had (and newer)."""
        self.startup = None

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

