"""How far a consumer group has got, read from the broker: committed offsets and lag.

Cheap enough to poll every half second while a worker runs: offsets only, no records read,
except to confirm the end. Transactionally written topics end in a commit marker that takes
an offset but is never delivered, so a caught-up group sits one offset short of the end
there; ``exact_lag`` confirms by reading the few records left (read_committed).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.engine.committed import records_between


# Offsets a caught-up partition may sit short of its end: one commit marker per producer whose
# transaction ended after the group's last record there.
MARKER_SLACK = 32


@dataclass(frozen=True)
class GroupState:
    processed: int  # committed offsets summed over the source topic's partitions
    behind_tps: int  # partitions (any watched topic) clearly not caught up
    caught_up: bool
    behind: tuple[str, ...] = ()  # a few of them, as topic[partition] committed/end


class GroupWatch:
    def __init__(self, client_kwargs: dict, group: str, source_topic: str) -> None:
        """``client_kwargs``: ``Settings.kafka_client_kwargs()`` (brokers and security)."""
        self.client_kwargs = client_kwargs
        self.group = group
        self.source_topic = source_topic
        self.extra_topics: list[str] = []
        self._admin = AIOKafkaAdminClient(**client_kwargs)
        self._consumer = AIOKafkaConsumer(
            enable_auto_commit=False, isolation_level="read_committed", **client_kwargs
        )

    async def start(self) -> None:
        await self._admin.start()
        await self._consumer.start()

    async def stop(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def topics_with_prefix(self, prefix: str) -> list[str]:
        return sorted(t for t in await self._admin.list_topics() if t.startswith(prefix))

    async def _tps(self, topics: list[str]) -> list[TopicPartition]:
        await self._consumer._client.force_metadata_update()  # noqa: SLF001
        tps = []
        for topic in topics:
            for partition in sorted(self._consumer.partitions_for_topic(topic) or ()):
                tps.append(TopicPartition(topic, partition))
        return tps

    async def source_end(self) -> int:
        tps = await self._tps([self.source_topic])
        return sum((await self._consumer.end_offsets(tps)).values())

    async def poll(self) -> GroupState:
        """Where the group stands. A partition at most ``MARKER_SLACK`` offsets short of its
        end may be caught up: transactions of several producers that end together leave one
        commit marker each after the last record (seen: two, on a repartition topic written
        by every views partition's producer). Those are settled by counting the records
        left (``exact_lag``)."""
        topics = [self.source_topic, *self.extra_topics]
        tps = await self._tps(topics)
        ends = await self._consumer.end_offsets(tps)
        committed = await self._admin.list_consumer_group_offsets(self.group)
        processed = 0
        behind = 0
        detail = []
        for tp in tps:
            meta = committed.get(tp)
            offset = meta.offset if meta is not None and meta.offset >= 0 else 0
            if tp.topic == self.source_topic:
                processed += offset
            if offset < ends[tp] - MARKER_SLACK:
                behind += 1
                if len(detail) < 5:
                    detail.append(f"{tp.topic}[{tp.partition}] {offset}/{ends[tp]}")
        if behind:
            return GroupState(processed, behind, False, tuple(detail))
        return GroupState(processed, 0, await self.exact_lag(tps, ends, committed) == 0)

    async def exact_lag(self, tps, ends, committed) -> int:  # noqa: ANN001
        """Records (not markers) after the committed offsets, read with read_committed."""
        starts = {tp: meta.offset for tp, meta in committed.items() if tp in ends}
        return await records_between(self.client_kwargs, starts, ends)
