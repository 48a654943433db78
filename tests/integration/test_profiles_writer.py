"""``ProfilesWriter`` against the real broker: records of ``user.profiles`` that faust skipped
are read directly and applied in order, re-deliveries are skipped, and the next owner of the
partition resumes from the offset recorded in the table."""

from __future__ import annotations

import json

import faust
import pytest

from app.metrics import Metrics
from app.pipeline.profiles import ProfilesWriter
from app.settings import Settings
from app.tables.profiles import marker_key
from support.topics import append, new_topic

pytestmark = pytest.mark.integration

USERS = 10


class Table(dict):
    """The GlobalTable's mapping part (a faust table write needs a running app)."""

    def __init__(self) -> None:
        super().__init__()
        self.writing: set[int] = set()


def profile(user: int, segment: str) -> bytes:
    return json.dumps({"userId": f"user-{user}", "segment": segment, "version": "1.0"}).encode()


async def source(bootstrap: str) -> tuple[str, list]:
    """A one-partition ``user.profiles`` with USERS profiles, then a move and a deletion."""
    topic = await new_topic(bootstrap, "profiles-writer")
    records = [(f"user-{i}".encode(), profile(i, "investor")) for i in range(USERS)]
    records += [(b"user-3", profile(3, "renter")), (b"user-4", None)]
    return topic, await append(bootstrap, topic, records)


def writer_for(topic: str, bootstrap: str, table: Table, metrics: Metrics) -> ProfilesWriter:
    settings = Settings(kafka_bootstrap_servers=bootstrap, profiles_topic=topic)
    return ProfilesWriter(faust.App("writer-test"), table, settings, metrics)


def segment(table: Table, user: int) -> str | None:
    raw = table.get(f"user-{user}".encode())
    return None if raw is None else json.loads(raw)["segment"]


async def test_skipped_records_are_read_directly_and_the_next_owner_resumes(kafka_bootstrap):
    topic, messages = await source(kafka_bootstrap)
    table, metrics = Table(), Metrics()
    writer = writer_for(topic, kafka_bootstrap, table, metrics)
    try:
        for m in messages[:3]:
            await writer.write(m)
        assert table.writing == {0}  # the table leaves partition 0's changelog to the writer
        assert table[marker_key(0)] == b"3"
        await writer.write(messages[7])  # faust skipped 3-6
        assert writer.records_refetched == 4
        # Read directly from 3 on, as far as the fetch went (here: to the end, 11).
        assert [segment(table, u) for u in (0, 1, 2, 5, 6, 7, 8, 9)] == ["investor"] * 8
        assert segment(table, 3) == "renter"  # moved at offset 10
        assert segment(table, 4) is None  # deleted at offset 11
        assert table[marker_key(0)] == b"12"

        await writer.write(messages[5])  # a re-delivery: already applied
        replayed = metrics.events_replayed.labels(topic)._value.get()  # noqa: SLF001
        assert replayed == 1
        await writer.forget([0])  # revoked
        assert table.writing == set()
    finally:
        await writer.stop()

    # The next owner (another worker's writer, the same replicated table) resumes at 12.
    more = await append(kafka_bootstrap, topic, [(b"user-4", profile(4, "agent")),
                                                 (b"user-5", profile(5, "agent")),
                                                 (b"user-6", profile(6, "agent"))])
    successor = writer_for(topic, kafka_bootstrap, table, Metrics())
    try:
        await successor.write(messages[9])  # faust re-delivers from an older commit: skipped
        assert successor.records_refetched == 0
        await successor.write(more[2])  # 12 and 13 skipped by faust: read directly
        assert successor.records_refetched == 2
        assert [segment(table, u) for u in (3, 4, 5, 6)] == ["renter", "agent", "agent", "agent"]
        assert table[marker_key(0)] == b"15"
    finally:
        await successor.stop()


class Consumer:
    """faust's consumer, as the audit uses it: the assignment, and seeks."""

    def __init__(self, assigned: set) -> None:
        self.assigned = assigned
        self.seeks: list = []

    def assignment(self) -> set:
        return self.assigned

    async def seek(self, tp, offset: int) -> None:  # noqa: ANN001
        self.seeks.append((tp, offset))


async def test_the_audit_seeks_faust_back_when_a_partition_stops_short(kafka_bootstrap):
    from types import SimpleNamespace

    from faust.types import TP

    topic, messages = await source(kafka_bootstrap)
    table = Table()
    consumer = Consumer({TP(topic, 0)})
    app = SimpleNamespace(consumer=consumer, topic=faust.App("audit-test").topic)
    settings = Settings(kafka_bootstrap_servers=kafka_bootstrap, profiles_topic=topic)
    writer = ProfilesWriter(app, table, settings, Metrics())
    try:
        await writer.audit()  # assigned, nothing delivered yet: first look only
        assert consumer.seeks == [] and table.writing == {0}
        await writer.audit()  # still nothing, and the topic ends at 12
        assert consumer.seeks == [(TP(topic, 0), 0)]

        for m in messages[:10]:  # faust re-delivers, then skips the last two for good
            await writer.write(m)
        await writer.audit()
        assert len(consumer.seeks) == 1  # it moved since the last look
        await writer.audit()
        assert consumer.seeks[-1] == (TP(topic, 0), 10)
        for m in messages[10:]:
            await writer.write(m)
        await writer.audit()
        await writer.audit()
        assert len(consumer.seeks) == 2  # at the end: nothing to do
    finally:
        await writer.stop()
