"""Kafka for the broker tests: produce a workload and learn where each record went, read a topic
back (committed records only), see how far a group has committed, see an open transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.generator import produce as send
from tests.support.oracle import Produced

# A broker address, or the client arguments of a secured cluster.
Connection = str | dict


def connection(bootstrap: Connection) -> dict:
    """Client arguments from a broker address (a plain broker) or from a secured cluster's
    ``Settings.kafka_client_kwargs()`` (tests/faults/test_security.py)."""
    return {"bootstrap_servers": bootstrap} if isinstance(bootstrap, str) else dict(bootstrap)


async def produce(bootstrap: Connection, topic: str, records: Iterable[tuple],
                  rate: float = 0.0) -> list[Produced]:
    """Send (key, value, ...) records in order; returns them with their partition and offset,
    what the oracle needs. The broker, not the client, decides what is too large."""
    produced: list[Produced] = []
    client = {**connection(bootstrap), "max_request_size": 2 * 1024 * 1024}
    await send(topic, records, client, rate=rate, on_acked=lambda md, rec: produced.append(
        Produced(md.partition, md.offset, rec[0], rec[1])))
    return produced


async def read_topic(bootstrap: Connection, topic: str, timeout: float = 60) -> list:
    """Every committed record of ``topic`` up to its current end (read_committed)."""
    consumer = AIOKafkaConsumer(isolation_level="read_committed", enable_auto_commit=False,
                                **connection(bootstrap))
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert tps, f"topic {topic} does not exist"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = []
        async with asyncio.timeout(timeout):
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(r for r in batch
                                   if r.offset < ends[TopicPartition(topic, r.partition)])
        return records
    finally:
        await consumer.stop()


async def committed_views(bootstrap: Connection, group: str, topic: str) -> tuple[int, int]:
    """(records the group has committed on ``topic``, records in ``topic``): a non-transactional
    input topic has no markers, so committed == end offset exactly when everything is done."""
    admin = AIOKafkaAdminClient(**connection(bootstrap))
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **connection(bootstrap))
    await admin.start()
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(tps)
        offsets = await admin.list_consumer_group_offsets(group)
        done = sum(max(offsets[tp].offset, 0) if tp in offsets else 0 for tp in tps)
        return done, sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


class TransactionProbe:
    """Sees whether a topic has a transaction open right now: its high watermark (what a
    read_uncommitted consumer sees) is past its last stable offset (read_committed)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumers = [AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                            isolation_level=level)
                           for level in ("read_uncommitted", "read_committed")]

    async def __aenter__(self) -> TransactionProbe:
        for consumer in self._consumers:
            await consumer.start()
        await self._consumers[0]._client.force_metadata_update()  # noqa: SLF001
        partitions = self._consumers[0].partitions_for_topic(self.topic) or ()
        self._tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        assert self._tps, f"topic {self.topic} does not exist"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for consumer in self._consumers:
            await consumer.stop()

    async def open(self) -> bool:
        high, stable = [await c.end_offsets(self._tps) for c in self._consumers]
        return any(high[tp] > stable[tp] for tp in self._tps)
