"""``StageReader`` against the broker: it reads exactly the partitions it is given, from the
offsets it is given, committed records only, and a seek or a removal drops what was fetched
for the old position."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from app.engine.reader import StageReader

pytestmark = pytest.mark.integration


async def fetch_until(reader: StageReader, want: int, timeout_s: float = 30) -> dict[int, list[int]]:
    """Offsets fetched per partition, until ``want`` records came (or the timeout)."""
    got: dict[int, list[int]] = {}
    async with asyncio.timeout(timeout_s):
        while sum(map(len, got.values())) < want:
            for partition, records in (await reader.fetch(1000)).items():
                got.setdefault(partition, []).extend(r.offset for r in records)
    return got


async def test_reads_given_partitions_from_given_offsets_and_follows_seeks_and_removals(
    kafka_bootstrap, create_topic, unique_name
):
    topic = await create_topic(unique_name("reader"), partitions=3)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for partition in range(3):
            for i in range(10):
                await producer.send(topic, b"v%d" % i, key=b"k", partition=partition)
        await producer.flush()
    finally:
        await producer.stop()

    reader = StageReader(topic, {"bootstrap_servers": kafka_bootstrap}, fetch_timeout_s=0.2)
    reader.add(0, 3)
    reader.add(2, 8)
    await reader.start()
    try:
        assert reader.highwater(0) is None  # nothing fetched yet
        assert await fetch_until(reader, 7 + 2) == {0: list(range(3, 10)), 2: [8, 9]}
        assert reader.highwater(0) == reader.highwater(2) == 10 and reader.highwater(1) is None
        assert await reader.fetch(1000) == {}  # nothing new: partition 1 was never given

        reader.seek(0, 5)  # read again from 5
        reader.add(1, 0)
        reader.remove([2])
        assert await fetch_until(reader, 5 + 10) == {0: list(range(5, 10)), 1: list(range(10))}
        assert reader.partitions == {0, 1}
    finally:
        await reader.stop()


async def test_reads_committed_records_only(kafka_bootstrap, create_topic, unique_name):
    topic = await create_topic(unique_name("reader-txn"))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("reader-txn")
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(topic, b"committed-1", key=b"k")
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", key=b"k")
        await producer.flush()
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"committed-2", key=b"k")
    finally:
        await producer.stop()

    reader = StageReader(topic, {"bootstrap_servers": kafka_bootstrap}, fetch_timeout_s=0.2)
    reader.add(0, 0)
    await reader.start()
    values = []
    try:
        async with asyncio.timeout(30):
            while len(values) < 2:
                for records in (await reader.fetch(1000)).values():
                    values.extend(r.value for r in records)
        assert await reader.fetch(1000) == {}
    finally:
        await reader.stop()
    assert values == [b"committed-1", b"committed-2"]
