"""The restore against the real broker (``app.engine.restore``): a transaction still open on
the changelog (a previous owner's, which KIP-447 no longer fences when the partition opens)
holds the restore back until it ends; its records are applied if it commits, never if it
aborts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer

from app.engine.restore import restore_partition
from app.engine.store import PartitionStore, rocksdb_options

pytestmark = pytest.mark.integration


async def _transactional(bootstrap: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=f"restore-{uuid.uuid4().hex[:8]}",
        enable_idempotence=True, acks="all",
    )
    await producer.start()
    return producer


@pytest.mark.parametrize("ends", ["commit", "abort"])
async def test_the_restore_waits_for_a_transaction_open_on_the_changelog(
    kafka_bootstrap, create_topic, unique_name, tmp_path, ends
):
    changelog = await create_topic(unique_name("changelog"))
    producer = await _transactional(kafka_bootstrap)
    store = PartitionStore(tmp_path / "000", rocksdb_options(1 << 20, 1 << 20))
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(changelog, b"1", key=b"before", partition=0)
        await producer.commit_transaction()
        await producer.begin_transaction()  # the previous owner's last round, still open
        await producer.send_and_wait(changelog, b"2", key=b"open", partition=0)

        restore = asyncio.ensure_future(
            restore_partition(store, changelog, 0, {"bootstrap_servers": kafka_bootstrap})
        )
        await asyncio.sleep(1.5)
        assert not restore.done()  # held back at the last stable offset
        if ends == "commit":
            await producer.commit_transaction()
        else:
            await producer.abort_transaction()
        applied = await asyncio.wait_for(restore, 30)

        assert store.get(b"before") == b"1"
        if ends == "commit":
            assert applied == 2 and store.get(b"open") == b"2"
        else:
            assert applied == 1 and store.get(b"open") is None
    finally:
        store.close()
        await producer.stop()
