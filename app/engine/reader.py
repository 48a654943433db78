"""One stage's input records, fetched by the stage's own consumer in whole batches.

faust owns the group: membership, the assignment, and the worker's lifecycle; its consumer
subscribes to the stage topics so that their partitions are assigned, but it fetches none of
them (``app.engine.faust_fixes.leave_to_stages``). Each stage reads the partitions it has
opened with a consumer of its own, without a group, ``read_committed``, from the offset after
the one its store last applied: the store, not the group, knows where a partition stands,
and its transaction commits the group's offset with the state (``app.engine.partitions``).

This skips what faust does per record on the way to an agent (a Message, the conductor, the
stream iterator, acks: measured at about two thirds of the worker's time with ``make bench``)
and hands the runner raw ``ConsumerRecord``s, a partition's records in offset order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from app.engine.clients import committed_reader, stop_consumer

log = logging.getLogger(__name__)

Records = dict[int, list[ConsumerRecord]]


class StageReader:
    """Fetches ``topic``'s partitions from where the stage wants them read.

    ``add``, ``remove`` and ``seek`` take effect before the next fetch; records of a partition
    fetched before it was removed or sought can still arrive once, which the runner's order
    check and the stores' applied offsets make harmless (``app.engine.ordering``).
    """

    def __init__(
        self,
        topic: str,
        client_kwargs: dict,
        fetch_max_wait_ms: int = 100,
        fetch_min_bytes: int = 1,
        max_partition_fetch_bytes: int = 1024 * 1024,
        fetch_timeout_s: float = 0.05,
    ) -> None:
        self.topic = topic
        # earliest: a stored offset below the log start (records deleted by retention) reads
        # what is left, like faust's own default; never "latest", which would skip records.
        self._options = dict(
            fetch_max_wait_ms=fetch_max_wait_ms,
            fetch_min_bytes=fetch_min_bytes,
            max_partition_fetch_bytes=max_partition_fetch_bytes,
            auto_offset_reset="earliest",
        )
        self._client_kwargs = client_kwargs
        self._consumer: AIOKafkaConsumer | None = None  # made in start(), on the running loop
        self._timeout_ms = max(int(fetch_timeout_s * 1000), 1)
        self._next: dict[int, int] = {}  # the partitions to read -> the next offset to hand over
        self._sought: set[int] = set()  # partitions whose consumer position must be set again
        self._assigned: set[int] = set()  # what the consumer is assigned now

    async def start(self) -> None:
        self._consumer = committed_reader(self._client_kwargs, **self._options)
        self._assigned = set()
        await self._consumer.start()

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await stop_consumer(consumer)

    @property
    def partitions(self) -> set[int]:
        return set(self._next)

    def highwater(self, partition: int) -> int | None:
        """The partition's end offset as of the latest fetch; None before one."""
        if self._consumer is None or partition not in self._assigned:
            return None
        return self._consumer.highwater(TopicPartition(self.topic, partition))

    def add(self, partition: int, offset: int) -> None:
        """Read ``partition`` from ``offset`` on (the offset after the store's applied one)."""
        self._next[partition] = offset
        self._sought.add(partition)

    def remove(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._next.pop(partition, None)
            self._sought.discard(partition)

    def seek(self, partition: int, offset: int) -> None:
        """Read ``partition`` again from ``offset`` (records the runner did not apply)."""
        if partition in self._next:
            self._next[partition] = offset
            self._sought.add(partition)

    async def fetch(self, max_records: int) -> Records:
        """The records fetched so far, up to ``max_records``; if none, waits for some at most
        the fetch timeout (then the caller can act on partitions opened or closed meanwhile)."""
        self._apply_changes()
        if not self._assigned:
            await asyncio.sleep(self._timeout_ms / 1000)
            return {}
        fetched = await self._consumer.getmany(timeout_ms=self._timeout_ms, max_records=max_records)
        out: Records = {}
        for tp, records in fetched.items():
            partition = tp.partition
            # Fetched before a remove or a seek: the partition is read again from where it
            # is wanted, so these are dropped here rather than handed over out of place.
            if records and partition in self._next and partition not in self._sought:
                out[partition] = records
                self._next[partition] = records[-1].offset + 1
        return out

    def _apply_changes(self) -> None:
        wanted = set(self._next)
        if wanted != self._assigned:
            self._consumer.assign([TopicPartition(self.topic, p) for p in sorted(wanted)])
            # A new assignment forgets every position: each is set again from ``_next``.
            self._sought |= wanted
            self._assigned = wanted
        for partition in self._sought:
            self._consumer.seek(TopicPartition(self.topic, partition), self._next[partition])
        self._sought.clear()
