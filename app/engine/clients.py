"""aiokafka helpers shared by the state, read-model and profiles-table code."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition


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


async def wait_for_partitions(
    consumer: AIOKafkaConsumer, topic: str, poll_s: float = 0.5
) -> list[TopicPartition]:
    """The topic's partitions in order, once it exists (a worker may start before it)."""
    partitions = await partitions_of(consumer, topic)
    while not partitions:
        await asyncio.sleep(poll_s)
        partitions = await partitions_of(consumer, topic)
    return [TopicPartition(topic, p) for p in sorted(partitions)]
