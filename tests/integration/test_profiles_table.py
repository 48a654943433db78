"""The profiles table against the real broker: bootstrap to the end offsets seen at start,
tailing, a restart that resumes at the checkpoint (reading only what came after it), and a
checkpoint the topic no longer has (truncated): the table is read again from the start."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import RecordsToDelete

from app.metrics import Metrics
from app.engine.store import rocksdb_options
from app.tables.profiles import ProfilesTable
from app.tables.profiles_reader import ProfilesReader

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

PARTITIONS = 3
USERS = 600


def profile(user: str, segment: str) -> bytes:
    return orjson.dumps({"userId": user, "segment": segment, "version": "1.0"})


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes | None]],
                  partition: int | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=key, partition=partition)
                for key, value in records]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


class Replica:
    """A worker's table and reader, started and stopped as a worker would."""

    def __init__(self, path: Path, topic: str, bootstrap: str) -> None:
        self.metrics = Metrics()
        self.table = ProfilesTable(path, rocksdb_options(1 << 20, 1 << 20))
        self.reader = ProfilesReader(
            self.table, topic, {"bootstrap_servers": bootstrap}, 64 * 1024, self.metrics
        )
        self.task = asyncio.ensure_future(self.reader.run())

    def read(self, outcome: str) -> float:
        return self.metrics.profiles_records.labels(outcome)._value.get()  # noqa: SLF001

    async def until(self, check, timeout: float = 30.0) -> None:  # noqa: ANN001
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            assert not self.task.done(), self.task
            assert asyncio.get_running_loop().time() < deadline, "timed out"
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        self.table.close()


async def test_bootstrap_tail_and_restart_from_the_checkpoint(kafka_bootstrap, create_topic,
                                                              unique_name, tmp_path):
    topic = await create_topic(unique_name("profiles"), PARTITIONS, {"cleanup.policy": "compact"})
    first = [(f"u{i}".encode(), profile(f"u{i}", "investor")) for i in range(USERS)]
    moves = [(f"u{i}".encode(), profile(f"u{i}", "renter")) for i in range(0, USERS, 3)]
    deletes = [(f"u{i}".encode(), None) for i in range(1, USERS, 5)]
    # (A compacted topic refuses records without a key: the broker keeps those out.)
    hostile = [(b"\xff\xfe", None), (b"\xffnext-offset:0", None), (b"u2\x00", None),
               (b"u4", profile("u7", "stolen")), (b"u5", b"[" * 100 + b"]" * 100)]
    await produce(kafka_bootstrap, topic, first + moves + deletes + hostile)

    expected: dict[str, str | None] = {}
    for key, value in first + moves + deletes:
        expected[key.decode()] = None if value is None else orjson.loads(value)["segment"]

    replica = Replica(tmp_path / "profiles", topic, kafka_bootstrap)
    try:
        await asyncio.wait_for(replica.reader.bootstrapped.wait(), 60)
        # At the moment it says so, everything published before it started is there.
        wrong = {u: replica.table.segment_of(u) for u, s in expected.items()
                 if replica.table.segment_of(u) != s}
        assert not wrong, list(wrong.items())[:5]
        assert replica.table.segment_of("u7") == "investor"  # not the record keyed u4
        assert replica.read("skipped") == len(hostile)
        assert replica.read("stored") + replica.read("deleted") == len(first + moves + deletes)

        # Tailing: a later change arrives without a restart.
        await produce(kafka_bootstrap, topic, [(b"u0", profile("u0", "student")), (b"u3", None)])
        await replica.until(lambda: replica.table.segment_of("u0") == "student"
                            and replica.table.profile("u3") is None)
        checkpoint = replica.table.checkpoints()
    finally:
        await replica.stop()
    assert sum(checkpoint.values()) == len(first + moves + deletes + hostile) + 2

    # Changes made while it is down are read after the restart, and only those.
    await produce(kafka_bootstrap, topic, [(b"u0", profile("u0", "family")),
                                           (b"new", profile("new", "agent"))])
    again = Replica(tmp_path / "profiles", topic, kafka_bootstrap)
    try:
        await asyncio.wait_for(again.reader.bootstrapped.wait(), 60)
        assert again.table.segment_of("u0") == "family"
        assert again.table.segment_of("new") == "agent"
        assert again.table.profile("u3") is None
        assert again.read("stored") == 2 and again.read("deleted") == again.read("skipped") == 0
        assert sum(again.table.checkpoints().values()) == sum(checkpoint.values()) + 2
    finally:
        await again.stop()


async def test_a_checkpoint_the_topic_no_longer_has_reads_it_again(kafka_bootstrap, create_topic,
                                                                   unique_name, admin, tmp_path):
    topic = await create_topic(unique_name("profiles"), 1)  # delete policy: records can go
    await produce(kafka_bootstrap, topic, [(f"u{i}".encode(), profile(f"u{i}", "investor"))
                                           for i in range(10)], partition=0)
    replica = Replica(tmp_path / "profiles", topic, kafka_bootstrap)
    try:
        await asyncio.wait_for(replica.reader.bootstrapped.wait(), 60)
        assert replica.table.checkpoints() == {0: 10}
    finally:
        await replica.stop()

    # While it is down, the topic loses its first 12 records (10 old, 2 new): the checkpoint
    # (10) is now before the topic's start.
    await produce(kafka_bootstrap, topic, [(b"u0", None), (b"u1", profile("u1", "x")),
                                           (b"u2", profile("u2", "renter"))], partition=0)
    await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(before_offset=12)})
    again = Replica(tmp_path / "profiles", topic, kafka_bootstrap)
    try:
        await asyncio.wait_for(again.reader.bootstrapped.wait(), 60)
        await again.until(lambda: again.table.checkpoints() == {0: 13})
        assert again.table.segment_of("u2") == "renter"
        assert again.table.segment_of("u3") is None  # gone with the truncated records
    finally:
        await again.stop()
