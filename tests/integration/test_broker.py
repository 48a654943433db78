"""The broker does what the application relies on: keyed partitioning,
transactions (exactly-once processing) and compacted topics (changelogs)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

pytestmark = pytest.mark.integration

CONSUME_TIMEOUT_S = 30


async def consume_to_end(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]):
    """All records from the start of `partitions` up to their current end."""
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    end = await consumer.end_offsets(partitions)
    records = []

    async def at_end() -> bool:
        return all([await consumer.position(tp) >= end[tp] for tp in partitions])

    async with asyncio.timeout(CONSUME_TIMEOUT_S):
        while not await at_end():
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
    return records


async def test_keyed_messages_round_trip(kafka_bootstrap, create_topic, unique_name):
    topic = await create_topic(unique_name("roundtrip"), partitions=3)
    sent = {f"user-{i % 10}".encode(): [] for i in range(100)}

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(100):
            key = f"user-{i % 10}".encode()
            value = f"view-{i}".encode()
            await producer.send(topic, value=value, key=key)
            sent[key].append(value)
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]
        records = await consume_to_end(consumer, parts)
    finally:
        await consumer.stop()

    assert len(records) == 100
    received: dict[bytes, list[bytes]] = {}
    partition_of: dict[bytes, set[int]] = {}
    for r in records:
        received.setdefault(r.key, []).append(r.value)
        partition_of.setdefault(r.key, set()).add(r.partition)
    assert received == sent  # per key: all messages, in send order
    assert all(len(p) == 1 for p in partition_of.values())  # a key stays on one partition
    assert len(set().union(*partition_of.values())) > 1  # and keys spread over partitions


async def test_transactions_hide_aborted_messages(kafka_bootstrap, create_topic, unique_name):
    topic = await create_topic(unique_name("txn"))

    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("txn-producer")
    )
    await producer.start()
    try:
        async with producer.transaction():
            for i in range(10):
                await producer.send(topic, key=b"k", value=f"committed-{i}".encode())

        await producer.begin_transaction()
        for i in range(10):
            await producer.send(topic, key=b"k", value=f"aborted-{i}".encode())
        await producer.flush()
        await producer.abort_transaction()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        records = await consume_to_end(consumer, [TopicPartition(topic, 0)])
    finally:
        await consumer.stop()

    assert [r.value for r in records] == [f"committed-{i}".encode() for i in range(10)]


async def test_compacted_topic_is_accepted(admin, create_topic, unique_name):
    topic = await create_topic(
        unique_name("changelog"),
        config={"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"},
    )

    [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    [resource] = response.to_object()["resources"]
    assert resource["error_code"] == 0
    config = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    assert config["cleanup.policy"] == "compact"
