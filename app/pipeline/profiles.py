"""``user.profiles`` -> the profiles GlobalTable, every record once and in offset order.

faust's stream can skip records of ``user.profiles`` around a rebalance (it drops records
fetched while flow is paused, and re-read ones below offsets it already saw; FAUST_NOTES) and
then commits past them, as its commit only needs a consecutive run of acknowledged offsets.
The committed offset therefore does not say which records were applied. The GlobalTable does:
with the records of a partition the writer stores the next offset to apply (``marker_key``),
and every replica and the next owner of the partition read it from their copy.

Per record: below the next offset it was applied already (a re-delivery: skipped); past it,
faust skipped records (or compaction removed them), which are read directly from Kafka and
applied first. ``audit`` covers
the records skipped at the end of a partition (nothing after them arrives): it seeks faust's
consumer back to the next offset.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import faust
import orjson
from aiokafka import TopicPartition

from app import codec
from app.clients import DirectReader
from app.metrics import Metrics
from app.models.events import ProfileDeleted, Rejection
from app.settings import Settings
from app.tables.profiles import marker_key

log = logging.getLogger(__name__)


class ProfilesWriter:
    def __init__(
        self,
        app: faust.App,
        table: faust.GlobalTable,
        settings: Settings,
        metrics: Metrics,
        on_deleted: Callable[[str], None] | None = None,
    ) -> None:
        self._app = app
        self._table = table
        self._settings = settings
        self._metrics = metrics
        self._on_deleted = on_deleted  # userId
        self._topic = settings.profiles_topic
        self._refetched = metrics.records_refetched.labels(self._topic)
        self._dlq = app.topic(
            settings.dlq_profiles_topic, key_serializer="raw", value_serializer="raw"
        )
        self._next: dict[int, int] = {}  # partition -> next offset to apply
        self._audited: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._reader = DirectReader(settings.kafka_client_kwargs())
        self.records_refetched = 0

    async def write(self, message) -> None:  # noqa: ANN001 - a faust Message, in its event
        """Apply ``message`` (and any records faust skipped before it). Runs in the agent, so
        table writes go to the changelog partition of ``message``."""
        async with self._lock:
            partition, offset = message.partition, message.offset
            expected = self._expected(partition)
            if offset < expected:
                self._metrics.events_replayed.labels(self._topic).inc()
                return
            if offset > expected:
                # A gap: skipped by faust, or compacted away. Read it (and on, as far as the
                # fetch goes: in a compacted topic the next gap is near) and apply in order.
                tp = TopicPartition(self._topic, partition)
                records = await self._reader.read(tp, expected, lambda: offset)
                skipped = sum(1 for r in records if r.offset < offset)
                if skipped:
                    log.warning(
                        "%s[%d]: faust skipped %d records at offsets %d-%d: read them directly",
                        self._topic, partition, skipped, expected, offset - 1,
                    )
                    self.records_refetched += skipped
                    self._refetched.inc(skipped)
                for record in records:
                    await self._apply(record)
            await self._apply(message)  # nothing if it was read directly above
            self._table[marker_key(partition)] = b"%d" % self._next[partition]

    async def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: their next owner (maybe this worker again) reads the marker."""
        async with self._lock:
            for partition in partitions:
                self._next.pop(partition, None)
                self._audited.pop(partition, None)
                self._table.writing.discard(partition)

    async def audit(self) -> None:
        """Seek faust back to the next offset of an owned partition that stopped short of the
        end of ``user.profiles`` with nothing applied since the previous audit (also when
        faust delivered nothing at all since the partition was assigned)."""
        owned = [tp for tp in self._app.consumer.assignment() if tp.topic == self._topic]
        if not owned:
            return
        ends = await self._reader.end_offsets(self._topic, [tp.partition for tp in owned])
        for tp in owned:
            async with self._lock:
                expected = self._expected(tp.partition)
            stuck = self._audited.get(tp.partition) == expected
            self._audited[tp.partition] = expected
            end = ends[tp.partition]
            if stuck and expected < end and tp in self._app.consumer.assignment():
                log.warning(
                    "%s[%d]: applied up to %d of %d and nothing arrived since the last check: "
                    "seeking back", self._topic, tp.partition, expected, end,
                )
                await self._app.consumer.seek(tp, expected)

    async def stop(self) -> None:
        await self._reader.stop()

    def _expected(self, partition: int) -> int:
        if partition not in self._next:
            # From here on the table leaves this partition's changelog to us: what it has not
            # applied yet is past the marker (written after its records), so we write it again.
            marker = self._table.get(marker_key(partition))
            self._table.writing.add(partition)
            self._next[partition] = int(marker) if marker is not None else 0
        return self._next[partition]

    async def _apply(self, message) -> None:  # noqa: ANN001 - faust Message or aiokafka record
        partition = message.partition
        if message.offset < self._next[partition]:
            return
        self._next[partition] = message.offset + 1
        self._metrics.events_consumed.labels(self._topic).inc()
        profile = codec.decode_profile(
            message.key, message.value, max_bytes=self._settings.max_value_bytes
        )
        if isinstance(profile, Rejection):
            await self._dead_letter(message, profile)
        elif isinstance(profile, ProfileDeleted):
            self._table.pop(profile.user_id.encode(), None)
            if self._on_deleted is not None:
                self._on_deleted(profile.user_id)
        else:
            self._table[profile.user_id.encode()] = orjson.dumps(profile.to_wire())

    async def _dead_letter(self, message, rejection: Rejection) -> None:  # noqa: ANN001
        log.warning(
            "%s[%d]@%d rejected: %s (%s)",
            message.topic, message.partition, message.offset, rejection.reason, rejection.detail,
        )
        await self._dlq.send(
            key=message.key,
            value=message.value,
            partition=message.partition,
            headers=rejection.dlq_headers(message.topic, message.partition, message.offset),
        )
        self._metrics.events_rejected.labels(message.topic, rejection.reason).inc()
