"""Small one-partition topics for integration tests, and their records as faust Messages."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.tables.changelog_repair import to_message


async def new_topic(bootstrap: str, prefix: str) -> str:
    """A fresh one-partition topic named ``<prefix>-<random>``."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def append(bootstrap: str, topic: str, records: list) -> list:
    """Produce ``records`` (key, value) to partition 0 and return them as the faust Messages
    faust would hand an agent or a table."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic, value, key=key, partition=0)
                for key, value in records]
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, sent[0].offset)
        messages: list = []
        while len(messages) < len(records):
            batch = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, ())
            messages.extend(to_message(r) for r in batch)
    finally:
        await consumer.stop()
    return messages[: len(records)]
