"""aiokafka helpers shared by the state, read-model and bootstrap code."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer without leaking aiokafka's internal cancellation.

    aiokafka (0.14, still open upstream as aio-libs/aiokafka#647) awaits its own cancelled
    ``_reset_committed_task`` in ``stop()``, so stopping a consumer soon after starting it
    raises CancelledError into the caller. That error is swallowed here unless the calling
    task itself is being cancelled.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


def committed_reader(client_kwargs: dict, **options: object) -> AIOKafkaConsumer:
    """A consumer without a group that sees committed records only: records of aborted or
    still-open transactions never reach it. Not started yet."""
    return AIOKafkaConsumer(
        enable_auto_commit=False, isolation_level="read_committed", **options, **client_kwargs
    )


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions; empty if it does not exist.

    A consumer without a subscription has no metadata for ``topic`` (``partitions_for_topic``
    answers None even after ``topics()``), so refresh it first.
    """
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()  # noqa: SLF001  (no public equivalent)
        partitions = consumer.partitions_for_topic(topic)
    return set(partitions or ())


async def end_offsets(client_kwargs: dict, topic: str) -> dict[TopicPartition, int]:
    """Current end offset of every partition of ``topic`` (read_committed: the LSO)."""
    consumer = committed_reader(client_kwargs)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions_of(consumer, topic))]
        return await consumer.end_offsets(tps) if tps else {}
    finally:
        await stop_consumer(consumer)


class DirectReader:
    """Reads ranges of a partition straight from Kafka, past faust: one group-less
    ``read_committed`` consumer, started on first use. Transient failures (the broker
    restarting) are retried as long as it takes."""

    def __init__(self, client_kwargs: dict) -> None:
        self._client_kwargs = client_kwargs
        self._consumer: AIOKafkaConsumer | None = None

    async def read(
        self, tp: TopicPartition, start: int, until: Callable[[], int]
    ) -> list[ConsumerRecord]:
        """The records of ``tp`` from offset ``start`` on, read until the position is past
        ``until()`` (asked again after every fetch, so the target may grow meanwhile) and as
        far as the last fetch went."""
        delay = 0.5
        while True:
            try:
                consumer = await self._started()
                consumer.assign([tp])
                consumer.seek(tp, start)
                records: list[ConsumerRecord] = []
                while await consumer.position(tp) <= until():
                    batches = await consumer.getmany(tp, timeout_ms=1000)
                    records.extend(batches.get(tp, ()))
                return records
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.warning("reading %s[%d] from %d failed (%r); retrying in %.1fs",
                            tp.topic, tp.partition, start, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def end_offsets(self, topic: str, partitions: list[int] | None = None) -> dict[int, int]:
        """partition -> end offset, for ``partitions`` (default: all) of ``topic``."""
        consumer = await self._started()
        if partitions is None:
            partitions = sorted(await partitions_of(consumer, topic))
        if not partitions:
            return {}
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {tp.partition: end for tp, end in ends.items()}

    async def stop(self) -> None:
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            await stop_consumer(consumer)

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = committed_reader(self._client_kwargs)
            await consumer.start()
            self._consumer = consumer
        return self._consumer


async def records_between(
    client_kwargs: dict,
    starts: dict[TopicPartition, int],
    ends: dict[TopicPartition, int],
) -> int:
    """Records (not transaction markers) from ``starts`` up to ``ends``, read_committed.

    A consumer group's lag in records: on a transactionally written topic a caught-up group
    sits short of the end offset by the commit markers, which take offsets but are never
    delivered, so ``end - committed`` alone never reaches 0 there.
    """
    consumer = committed_reader(client_kwargs)
    await consumer.start()
    try:
        consumer.assign(list(ends))
        behind = []
        for tp, end in ends.items():
            start = max(starts.get(tp, 0), 0)
            if start < end:
                consumer.seek(tp, start)
                behind.append(tp)
            else:
                consumer.pause(tp)
        remaining = 0
        while behind:
            batches = await consumer.getmany(*behind, timeout_ms=500)
            for tp, records in batches.items():
                remaining += sum(1 for r in records if r.offset < ends[tp])
            positions = [(tp, await consumer.position(tp)) for tp in behind]
            behind = [tp for tp, pos in positions if pos < ends[tp]]
        return remaining
    finally:
        await stop_consumer(consumer)
