"""Outputs against the real broker's limits: a dead-letter copy of the largest record the input
topic takes is accepted by the DLQ topic as the product creates it; an existing DLQ topic with a
smaller limit is raised at start-up; a record the broker refuses fails the commit loudly instead
of stalling it for ever."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.producer.message_accumulator import BatchBuilder

from app.models.events import Rejection
from app.settings import Settings
from app.engine.transactions import OutputRefused, Outbox, TransactionalWriter
from app.topics import MAX_MESSAGE_BYTES, TopicMismatch, ensure_topics, topic_specs

pytestmark = pytest.mark.integration

COMMIT_TIMEOUT_S = 60  # the old writer retried a refused record for ever


def product_settings(bootstrap: str, unique_name) -> Settings:  # noqa: ANN001
    name = unique_name("limits")
    return Settings(
        kafka_bootstrap_servers=bootstrap,
        app_id=name,
        views_topic=f"{name}.views",
        profiles_topic=f"{name}.profiles",
        property_events_topic=f"{name}.property-events",
        insights_topic=f"{name}.insights",
        topic_partitions=1,
    )


async def topic_config(admin, topic: str) -> dict[str, str]:  # noqa: ANN001
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, None)
    [response] = await admin.describe_configs([resource])
    [resource] = response.to_object()["resources"]
    assert resource["error_code"] == 0, resource
    return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}


async def delete_topics(admin, settings: Settings) -> None:  # noqa: ANN001
    await admin.delete_topics([spec.name for spec in topic_specs(settings)])


def value_filling_a_batch(key: bytes, limit: int) -> bytes:
    """A value whose record alone makes a batch of exactly ``limit`` bytes."""
    length = limit
    for _ in range(5):
        batch = BatchBuilder(limit, 0)
        batch.append(timestamp=None, key=key, value=b"x" * length, headers=[])
        if batch.size() == limit:
            return b"x" * length
        length += limit - batch.size()
    raise AssertionError("no value length fills the batch exactly")


async def produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_request_size=2**24)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, partition=0)
    finally:
        await producer.stop()


async def read_all(bootstrap: str, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        records: list = []
        for _ in range(30):
            records.extend((await consumer.getmany(tp, timeout_ms=1000)).get(tp, ()))
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()


async def test_dead_letter_of_the_largest_input_record_with_the_largest_headers_is_accepted(
    kafka_bootstrap, admin, unique_name
):
    settings = product_settings(kafka_bootstrap, unique_name)
    await ensure_topics(settings)
    try:
        input_limit = int((await topic_config(admin, settings.views_topic))[MAX_MESSAGE_BYTES])
        key = b"prop-" + b"k" * 200
        value = value_filling_a_batch(key, input_limit)
        await produce(kafka_bootstrap, settings.views_topic, key, value)  # at the limit: taken
        [original] = await read_all(kafka_bootstrap, settings.views_topic, 1)
        assert original.value == value

        headers = Rejection("unsupported_version", "d" * 5000).dlq_headers(
            "t" * 249, 2**31 - 1, 2**63 - 1  # the longest topic name, partition and offset
        )
        outbox = Outbox()
        outbox.add(settings.dlq_views_topic, 0, original.key, original.value, headers)
        writer = TransactionalWriter(
            f"{settings.app_id}-views-0",
            settings.kafka_client_kwargs(),
            settings.dlq_max_message_bytes,
        )
        await writer.start()
        try:
            await asyncio.wait_for(
                writer.commit(
                    outbox,
                    settings.views_changelog_topic,
                    {TopicPartition(settings.views_topic, 0): original.offset + 1},
                    settings.app_id,
                ),
                COMMIT_TIMEOUT_S,
            )
        finally:
            await writer.stop()

        [copy] = await read_all(kafka_bootstrap, settings.dlq_views_topic, 1)
        assert (copy.key, copy.value) == (key, value)
        assert list(copy.headers) == headers
    finally:
        await delete_topics(admin, settings)


async def test_an_existing_dlq_topic_with_a_smaller_limit_is_raised_keeping_its_settings(
    kafka_bootstrap, admin, create_topic, unique_name
):
    settings = product_settings(kafka_bootstrap, unique_name)
    await create_topic(
        settings.dlq_views_topic, 1, {MAX_MESSAGE_BYTES: "1048588", "retention.ms": "86400000"}
    )
    try:
        await ensure_topics(settings)
        for _ in range(40):  # configuration changes reach the broker's cache a moment later
            config = await topic_config(admin, settings.dlq_views_topic)
            if config[MAX_MESSAGE_BYTES] != "1048588":
                break
            await asyncio.sleep(0.25)
        assert int(config[MAX_MESSAGE_BYTES]) == settings.dlq_max_message_bytes
        assert config["retention.ms"] == "86400000"
    finally:
        await delete_topics(admin, settings)


async def test_an_input_topic_larger_than_its_dlq_can_hold_stops_the_start(
    kafka_bootstrap, admin, create_topic, unique_name
):
    settings = product_settings(kafka_bootstrap, unique_name)
    await create_topic(settings.profiles_topic, 1, {MAX_MESSAGE_BYTES: "4000000"})
    try:
        with pytest.raises(TopicMismatch, match="DLQ_MAX_MESSAGE_BYTES"):
            await ensure_topics(settings)
    finally:
        await delete_topics(admin, settings)


async def test_a_record_the_broker_refuses_fails_the_commit_instead_of_retrying_for_ever(
    kafka_bootstrap, create_topic, admin, unique_name
):
    source = await create_topic(unique_name("refused-src"))
    small = await create_topic(unique_name("refused"), 1, {MAX_MESSAGE_BYTES: "1000"})
    outbox = Outbox()
    outbox.add(small, 0, b"k", b"x" * 5000)
    writer = TransactionalWriter(
        f"refused-{uuid.uuid4().hex[:8]}", {"bootstrap_servers": kafka_bootstrap}
    )
    await writer.start()
    try:
        with pytest.raises(OutputRefused) as raised:
            await asyncio.wait_for(
                writer.commit(outbox, "none", {TopicPartition(source, 0): 1}, unique_name("g")),
                COMMIT_TIMEOUT_S,
            )
        assert (raised.value.topic, raised.value.partition) == (small, 0)
        assert raised.value.error == "MessageSizeTooLargeError"
    finally:
        await writer.stop()
        await admin.delete_topics([source, small])
