"""KIP-447 against the real broker (app.engine.kip447): a transaction's offsets committed
under the consumer group's generation are accepted from the current members and refused from
a stale one, with nothing of the refused round committed; and a ``require_stable`` fetch
waits for an open transaction's offsets.

The group's members are plain aiokafka consumers, as faust's is.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import ConnectionGroup, CoordinationType

from app.engine.clients import stop_consumer
from app.engine.kip447 import (
    GenerationFenced,
    GroupMetadata,
    UnstableOffsets,
    check_brokers,
    consumer_group_metadata,
    fetch_committed,
    send_offsets_to_transaction,
)
from app.engine.kip447.outcomes import UNSTABLE_OFFSET_COMMIT
from app.engine.kip447.protocol import StableOffsetFetch
from tests.support.topics import read_topic

pytestmark = pytest.mark.integration

GROUP_SETTINGS = {
    "enable_auto_commit": False,
    "heartbeat_interval_ms": 300,  # rebalances are noticed within a heartbeat
    "session_timeout_ms": 10_000,
    "auto_offset_reset": "earliest",
}


async def _member(bootstrap: str, group: str, topic: str, **extra) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                                **GROUP_SETTINGS, **extra)
    await consumer.start()
    return consumer


async def _settled(members: list[AIOKafkaConsumer], partitions: int, timeout_s: float = 60) -> int:
    """Wait until ``members`` share one generation and hold every partition between them;
    that generation."""
    async with asyncio.timeout(timeout_s):
        while True:
            generations = {consumer_group_metadata(m).generation_id for m in members}
            held = sum(len(m.assignment()) for m in members)
            if len(generations) == 1 and -1 not in generations and held == partitions:
                return generations.pop()
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def _transactional(bootstrap: str):
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"kip447-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True, acks="all",
    )
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def _values(bootstrap: str, topic: str) -> list[bytes]:
    """Every record of ``topic`` a read_committed reader sees."""
    return [record.value for record in await read_topic(bootstrap, topic)]


async def _raw_stable_fetch_codes(
    producer: AIOKafkaProducer, group: str, tp: TopicPartition
) -> list[int]:
    """One OffsetFetch v7 with require_stable, without retries: the partition error codes."""
    node = await producer.client.coordinator_lookup(CoordinationType.GROUP, group)
    response = await producer.client.send(
        node, StableOffsetFetch(group, [(tp.topic, [tp.partition])], True),
        group=ConnectionGroup.COORDINATION,
    )
    return [code for _t, parts, _ in response.topics for _p, _o, _e, _m, code, _ in parts]


async def test_a_commit_with_the_current_generation_is_accepted_and_visible(
    kafka_bootstrap, create_topic, unique_name
):
    source = await create_topic(unique_name("in"), partitions=2)
    sink = await create_topic(unique_name("out"))
    group = unique_name("g")
    a = await _member(kafka_bootstrap, group, source)
    b = await _member(kafka_bootstrap, group, source)
    try:
        await _settled([a, b], partitions=2)
        metadata = consumer_group_metadata(a)
        assert metadata.group_id == group and metadata.member_id and metadata.generation_id > 0
        tp = sorted(a.assignment())[0]
        async with _transactional(kafka_bootstrap) as producer:
            await producer.begin_transaction()
            await producer.send(sink, b"round-1", partition=0)
            await send_offsets_to_transaction(producer, {tp: 5}, metadata)
            await producer.commit_transaction()

            assert await fetch_committed(producer.client, group, [tp]) == {tp: 5}
        assert await a.committed(tp) == 5  # aiokafka's own fetch sees the same offset
        assert await _values(kafka_bootstrap, sink) == [b"round-1"]
    finally:
        await stop_consumer(a)
        await stop_consumer(b)


async def test_a_stale_generation_is_refused_and_nothing_commits(
    kafka_bootstrap, create_topic, unique_name
):
    source = await create_topic(unique_name("in"), partitions=2)
    sink = await create_topic(unique_name("out"))
    group = unique_name("g")
    a = await _member(kafka_bootstrap, group, source)
    b = await _member(kafka_bootstrap, group, source)
    try:
        generation = await _settled([a, b], partitions=2)
        stale_a, gone_b = consumer_group_metadata(a), consumer_group_metadata(b)
        tp = sorted(a.assignment())[0]

        await stop_consumer(b)  # b leaves: a rejoins in the next generation, with both partitions
        assert await _settled([a], partitions=2) > generation
        current = consumer_group_metadata(a)

        async with _transactional(kafka_bootstrap) as producer:
            for refused, reason in ((stale_a, "ILLEGAL_GENERATION"), (gone_b, "UNKNOWN_MEMBER_ID")):
                await producer.begin_transaction()
                await producer.send(sink, b"zombie", partition=0)
                with pytest.raises(GenerationFenced) as fenced:
                    await send_offsets_to_transaction(producer, {tp: 7}, refused)
                assert fenced.value.reason == reason and fenced.value.group == refused
                with pytest.raises(GenerationFenced):  # the round cannot commit
                    await producer.commit_transaction()
                await producer.abort_transaction()
                assert await fetch_committed(producer.client, group, [tp]) == {tp: None}

            # Not a member of any generation (what aiokafka's consumer holds after its own
            # heartbeat found it fenced): refused before the coordinator is asked, as the
            # coordinator would not check it at all.
            await producer.begin_transaction()
            await producer.send(sink, b"zombie", partition=0)
            with pytest.raises(GenerationFenced, match="not a member"):
                await send_offsets_to_transaction(producer, {tp: 7}, GroupMetadata(group, -1, ""))
            await producer.abort_transaction()

            # The same producer goes on with the current generation.
            await producer.begin_transaction()
            await producer.send(sink, b"owner", partition=0)
            await send_offsets_to_transaction(producer, {tp: 9}, current)
            await producer.commit_transaction()
            assert await fetch_committed(producer.client, group, [tp]) == {tp: 9}

        # The refused rounds were aborted on the broker, not carried into the next transaction.
        assert await _values(kafka_bootstrap, sink) == [b"owner"]
    finally:
        await stop_consumer(a)
        await stop_consumer(b)


async def test_a_replaced_static_member_is_fenced(kafka_bootstrap, create_topic, unique_name):
    source = await create_topic(unique_name("in"))
    group = unique_name("g")
    member = await _member(kafka_bootstrap, group, source, group_instance_id="worker-1")
    try:
        await _settled([member], partitions=1)
        metadata = consumer_group_metadata(member)
        assert metadata.group_instance_id == "worker-1"
        tp = TopicPartition(source, 0)
        impostor = GroupMetadata(group, metadata.generation_id, "worker-1-old", "worker-1")
        async with _transactional(kafka_bootstrap) as producer:
            await producer.begin_transaction()
            with pytest.raises(GenerationFenced) as fenced:
                await send_offsets_to_transaction(producer, {tp: 3}, impostor)
            assert fenced.value.reason == "FENCED_INSTANCE_ID"
            await producer.abort_transaction()

            await producer.begin_transaction()
            await send_offsets_to_transaction(producer, {tp: 4}, metadata)
            await producer.commit_transaction()
            assert await fetch_committed(producer.client, group, [tp]) == {tp: 4}
    finally:
        await stop_consumer(member)


async def test_a_stable_fetch_waits_for_the_open_transaction(
    kafka_bootstrap, create_topic, unique_name
):
    source = await create_topic(unique_name("in"))
    group = unique_name("g")
    member = await _member(kafka_bootstrap, group, source)
    tp = TopicPartition(source, 0)
    try:
        await _settled([member], partitions=1)
        metadata = consumer_group_metadata(member)
        async with _transactional(kafka_bootstrap) as producer:
            client = producer.client
            await producer.begin_transaction()
            await send_offsets_to_transaction(producer, {tp: 3}, metadata)  # pending

            assert await _raw_stable_fetch_codes(producer, group, tp) == [UNSTABLE_OFFSET_COMMIT]
            # Without require_stable the offset from before the transaction comes back.
            assert await fetch_committed(client, group, [tp], require_stable=False) == {tp: None}
            with pytest.raises(UnstableOffsets, match=rf"{source}\[0\]"):
                await fetch_committed(client, group, [tp], timeout_s=1.0)

            waiting = asyncio.create_task(fetch_committed(client, group, [tp], timeout_s=30))
            await asyncio.sleep(1.0)
            assert not waiting.done()
            await producer.commit_transaction()
            assert await asyncio.wait_for(waiting, 30) == {tp: 3}

            # An aborted transaction ends the wait too, with the offset from before it.
            await producer.begin_transaction()
            await send_offsets_to_transaction(producer, {tp: 8}, metadata)
            waiting = asyncio.create_task(fetch_committed(client, group, [tp], timeout_s=30))
            await asyncio.sleep(1.0)
            assert not waiting.done()
            await producer.abort_transaction()
            assert await asyncio.wait_for(waiting, 30) == {tp: 3}
            assert await _raw_stable_fetch_codes(producer, group, tp) == [0]
    finally:
        await stop_consumer(member)


async def test_the_broker_announces_both_versions(kafka_bootstrap):
    """What a worker checks at start-up (``check_brokers``), against the real ApiVersions."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await check_brokers(producer.client)  # raises UnsupportedByBroker on Kafka < 2.5
    finally:
        await producer.stop()
