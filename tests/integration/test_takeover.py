"""A dead owner's open transaction fenced by the partition's next owner, against the real
broker (app.engine.takeover): ListTransactions, DescribeTransactions and InitProducerId as
Kafka 4.4 answers them. The transaction is aborted as a whole (records and offsets), its
producer fenced, and a transaction of another worker on another partition left alone.

The previous owner's transactions have a 60 s timeout, judged with a clock 61 s ahead: they
look expired to the new owner, while the broker would keep them open for a minute (its own
clean-up cannot race the test).
"""

from __future__ import annotations

import time
import types

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerFenced

from app.engine import takeover
from app.engine.clients import stop_consumer
from app.engine.identity import stage_transactional_ids, transactional_id
from app.engine.kip447 import UnstableOffsets, fetch_committed

pytestmark = pytest.mark.integration

AHEAD_S = 61


async def _producer(bootstrap: str, txn_id: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=txn_id, enable_idempotence=True,
        acks="all", transaction_timeout_ms=60_000,
    )
    await producer.start()
    return producer


async def _committed(bootstrap: str, tp: TopicPartition) -> list[bytes]:
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                              enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await reader.position(tp) < end:
            for records in (await reader.getmany(tp, timeout_ms=500)).values():
                values.extend(r.value for r in records)
        return values
    finally:
        await stop_consumer(reader)


async def test_a_dead_owners_transaction_is_fenced_and_aborted_at_once(
    kafka_bootstrap, create_topic, unique_name, monkeypatch
):
    app = unique_name("app")
    source = await create_topic(f"{app}-in", partitions=2)
    changelog = await create_topic(f"{app}-changelog", partitions=2)
    dead_id = transactional_id(app, "views", "0123456789ab")
    live_id = transactional_id(app, "views", "bbbbbbbbbbbb")
    dead = await _producer(kafka_bootstrap, dead_id)
    live = await _producer(kafka_bootstrap, live_id)
    client = None
    try:
        # The dead owner's last round of partition 1, and a live worker's round of partition 0.
        for producer, partition in ((dead, 1), (live, 0)):
            await producer.begin_transaction()
            await producer.send_and_wait(changelog, b"round", key=b"k", partition=partition)
            await producer.send_offsets_to_transaction(
                {TopicPartition(source, partition): 5}, app
            )
        tp = TopicPartition(source, 1)
        with pytest.raises(UnstableOffsets):
            await takeover.stable_offset(
                {"bootstrap_servers": kafka_bootstrap}, app, tp,
                changelog=TopicPartition(changelog, 1),
                stage_ids=stage_transactional_ids(app, "views"), own_id="unused", timeout_s=1.0,
            )  # with the real clock: not expired, not fenced, still open

        real = time.time
        monkeypatch.setattr(takeover, "time", types.SimpleNamespace(time=lambda: real() + AHEAD_S))
        counted: list[None] = []
        started = time.monotonic()
        fenced = await takeover.stable_offset(
            {"bootstrap_servers": kafka_bootstrap}, app, tp,
            changelog=TopicPartition(changelog, 1),
            stage_ids=stage_transactional_ids(app, "views"),
            own_id=transactional_id(app, "views", "aaaaaaaaaaaa"),
            on_fenced=lambda: counted.append(None),
        )
        took = time.monotonic() - started
        assert fenced == [dead_id] and len(counted) == 1
        assert took < 20, f"the fenced transaction took {took:.1f}s to end (60 s timeout)"

        # Aborted as a whole: no offset, no record; its producer is fenced.
        with pytest.raises(ProducerFenced):
            await dead.commit_transaction()
        client = await _producer(kafka_bootstrap, transactional_id(app, "views", "cccccccccccc"))
        assert await fetch_committed(client.client, app, [tp]) == {tp: None}
        assert await _committed(kafka_bootstrap, TopicPartition(changelog, 1)) == []

        # The live worker's transaction on partition 0 was left alone and commits.
        await live.commit_transaction()
        tp0 = TopicPartition(source, 0)
        assert await fetch_committed(client.client, app, [tp0]) == {tp0: 5}
        assert await _committed(kafka_bootstrap, TopicPartition(changelog, 0)) == [b"round"]
    finally:
        for producer in (dead, live, client):
            if producer is not None:
                try:
                    await producer.stop()
                except Exception:  # noqa: BLE001 - a fenced producer may fail to stop cleanly
                    pass
