"""``read_to_end`` against the broker: committed records only, up to the end the topic had
when the read began, where a transaction still open ends it (its last stable offset)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition

from app.engine.committed import TopicNotFound, read_to_end, records_between

pytestmark = pytest.mark.integration


async def values_of(kwargs: dict, what, **options) -> list[tuple[int, bytes]]:  # noqa: ANN001
    async with asyncio.timeout(30):
        return [
            (r.partition, r.value) async for batch in read_to_end(kwargs, what, **options)
            for r in batch
        ]


async def test_reads_committed_records_to_the_stable_end(
    kafka_bootstrap, create_topic, unique_name
):
    topic = await create_topic(unique_name("read-to-end"), partitions=2)
    kwargs = {"bootstrap_servers": kafka_bootstrap}
    producer = AIOKafkaProducer(transactional_id=unique_name("read-to-end"), **kwargs)
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(3):
                await producer.send(topic, b"c%d" % i, key=b"k", partition=0)
            await producer.send(topic, b"d0", key=b"k", partition=1)
        await producer.begin_transaction()
        await producer.send(topic, b"aborted", key=b"k", partition=0)
        await producer.flush()
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, b"c3", key=b"k", partition=0)
        await producer.begin_transaction()  # left open: the read ends before it
        await producer.send(topic, b"open", key=b"k", partition=0)
        await producer.flush()

        got = await values_of(kwargs, topic)
        assert sorted(got) == [(0, b"c0"), (0, b"c1"), (0, b"c2"), (0, b"c3"), (1, b"d0")]

        tp = TopicPartition(topic, 0)
        assert await values_of(kwargs, [tp], starts={tp: 1}, ends={tp: 3}) == [
            (0, b"c1"), (0, b"c2")
        ]
        # records, not offsets: the aborted record and the commit markers are not counted
        assert await records_between(kwargs, {tp: 1}, {tp: 8}) == 3
        await producer.abort_transaction()
    finally:
        await producer.stop()


async def test_a_missing_topic_is_refused_by_name(kafka_bootstrap, unique_name):
    name = unique_name("never-created")
    with pytest.raises(TopicNotFound, match=name):
        await values_of({"bootstrap_servers": kafka_bootstrap}, name)
