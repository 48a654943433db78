"""Atomic publication of one partition's changes: changelog, outputs, dead letters and the
consumer group's input offset, in one Kafka transaction, by a producer whose transactional
id belongs to the partition.

Starting the producer fences any older owner of the same partition (a zombie after a
rebalance): its open transaction is aborted and its later commits fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 512 * 1024


class PartitionFenced(Exception):
    """Another worker owns this partition now; our pending changes must be dropped."""


@dataclass(slots=True)
class Outbox:
    """Records waiting for the next commit, grouped by (topic, partition)."""

    records: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, list]]] = field(
        default_factory=dict
    )

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        bucket = self.records.get((topic, partition))
        if bucket is None:
            bucket = self.records[(topic, partition)] = []
        bucket.append((key, value, headers or []))

    def extend(
        self, topic: str, partition: int, items: Iterable[tuple[bytes, bytes | None]]
    ) -> None:
        """Add keyed records without headers (a changelog's pending writes)."""
        bucket = self.records.setdefault((topic, partition), [])
        bucket.extend((key, value, []) for key, value in items)

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self.records.values())

    def clear(self) -> None:
        self.records = {}


class TransactionalWriter:
    """Commits outboxes for one partition; retries transient failures until it succeeds."""

    def __init__(self, transactional_id: str, client_kwargs: dict[str, Any]) -> None:
        self.transactional_id = transactional_id
        self._client_kwargs = client_kwargs
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        producer = AIOKafkaProducer(
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=0,
            max_batch_size=MAX_BATCH_BYTES,
            max_request_size=2 * MAX_BATCH_BYTES,
            request_timeout_ms=30_000,
            **self._client_kwargs,
        )
        try:
            await producer.start()
        except BaseException:
            await self._discard(producer)
            raise
        self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await self._discard(producer)

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        try:
            await producer.stop()
        except (KafkaError, OSError, RuntimeError) as exc:
            # A fenced or broken producer may fail to stop cleanly; with the broker gone,
            # aiokafka's metadata task can even write to a closed uvloop transport
            # (RuntimeError). It is discarded either way: that must not end the worker.
            log.debug("producer %s stopped with an error: %r", self.transactional_id, exc)

    async def commit(
        self,
        outbox: Outbox,
        changelog_topic: str,
        source_offsets: dict[TopicPartition, int],
        group_id: str,
        still_owned: Callable[[], bool] = lambda: True,
    ) -> int | None:
        """Publish ``outbox`` and commit the consumer group's ``source_offsets``, atomically.

        Returns the last changelog batch's base offset. Before retrying with a new producer
        (which fences older ones of the same id) it checks ``still_owned``: a zombie that
        lost the partition must not fence its new owner.

        Transient failures (broker restarts, timeouts) are retried with a fresh producer,
        as long as it takes. Raises PartitionFenced when a newer owner exists.
        """
        delay = 0.5
        while True:
            try:
                return await self._commit_once(outbox, changelog_topic, source_offsets, group_id)
            except ProducerFenced as exc:
                await self.stop()
                raise PartitionFenced(self.transactional_id) from exc
            except (KafkaError, OSError, asyncio.TimeoutError, AssertionError) as exc:
                # AssertionError: aiokafka's transaction manager in FATAL_ERROR; a new
                # producer (same transactional id) starts clean, or finds itself fenced.
                log.warning(
                    "transaction %s failed (%r); retrying in %.1fs",
                    self.transactional_id,
                    exc,
                    delay,
                )
                await self.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                if not still_owned():
                    raise PartitionFenced(self.transactional_id) from exc
                try:
                    await self.start()
                except ProducerFenced as fenced:
                    raise PartitionFenced(self.transactional_id) from fenced
                except (KafkaError, OSError) as start_exc:
                    log.warning("producer %s restart failed: %r", self.transactional_id, start_exc)

    async def _commit_once(
        self,
        outbox: Outbox,
        changelog_topic: str,
        source_offsets: dict[TopicPartition, int],
        group_id: str,
    ) -> int | None:
        producer = self._producer
        if producer is None:
            await self.start()
            producer = self._producer
            assert producer is not None
        changelog_offset: int | None = None
        await producer.begin_transaction()
        try:
            deliveries = []
            for (topic, partition), records in outbox.records.items():
                for batch in _batches(producer, records):
                    fut = await producer.send_batch(batch, topic, partition=partition)
                    deliveries.append((topic, fut))
            # The offsets go to the transaction coordinator while the records are in flight
            # (one round trip saved); the commit waits for both.
            offsets = asyncio.ensure_future(
                producer.send_offsets_to_transaction(source_offsets, group_id)
            )
            try:
                for topic, fut in deliveries:
                    metadata = await fut
                    if topic == changelog_topic:
                        changelog_offset = max(changelog_offset or -1, metadata.offset)
            finally:
                await asyncio.wait([offsets])
                error = offsets.exception()  # retrieved even when a delivery failed first
            if error is not None:
                raise error
        except BaseException:
            await _abort_quietly(producer)
            raise
        await producer.commit_transaction()
        return changelog_offset


def _batches(producer: AIOKafkaProducer, records: list) -> list:
    batches = []
    batch = producer.create_batch()
    for key, value, headers in records:
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            batches.append(batch)
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                raise ValueError(f"record of {len(value or b'')} bytes exceeds the batch size")
    if batch.record_count():
        batches.append(batch)
    return batches


async def _abort_quietly(producer: AIOKafkaProducer) -> None:
    """Best effort: the original error is what the caller handles.

    A producer in aiokafka's FATAL_ERROR state (fenced, or a connection lost mid-commit)
    answers abort with an AssertionError (invalid state transition); that must not replace
    the error that tells fenced from retriable.
    """
    try:
        await producer.abort_transaction()
    except Exception:  # noqa: BLE001
        log.debug("abort after a failed transaction also failed", exc_info=True)
