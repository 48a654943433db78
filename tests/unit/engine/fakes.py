"""Kafka stand-ins for the engine's unit tests: a transactional writer that records what it
would publish, and a processor that echoes each record to its state and to an output topic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from app.engine import partitions as partitions_module
from app.engine.partitions import OwnedPartitions
from app.engine.kip447 import GroupMetadata
from app.engine.stall import CommitWatch
from app.engine.store import PartitionStore, rocksdb_options
from app.engine.processor import Processor
from app.engine.transactions import MAX_BATCH_BYTES, Outbox
from app.models.dead_letter import DeadLetterRoute

SOURCE = "in"
CHANGELOG = "in-changelog"
OUTPUT = "out"
DEAD_LETTERS = "in.dlq"
SMALL = 1 << 20


class FakeWriter:
    """``TransactionalWriter`` without a broker: a stage's one writer. Each round is
    recorded; ``fail`` (an exception, or None) is raised by the next rounds; ``gate``, when
    set, holds a round until it is set (a round in flight)."""

    made: list[FakeWriter] = []

    def __init__(self, transactional_id: str, client_kwargs: dict, max_request_size: int) -> None:
        self.transactional_id = transactional_id
        self.commits: list[SimpleNamespace] = []
        self.fail: BaseException | None = None
        self.gate: asyncio.Event | None = None
        self.started = self.stopped = False
        self.next_offset = 0
        FakeWriter.made.append(self)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def commit(self, outbox, changelog_topic, source_offsets, group, on_error=None):  # noqa: ANN001
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            if on_error is not None:
                on_error(self.fail)
            raise self.fail
        # what the writer sends: each partition's records, then its changelog writes
        records = {tp: list(bucket) for tp, bucket in outbox.records.items()}
        for tp, writes in outbox.writes.items():
            records.setdefault(tp, []).extend((k, v, []) for k, v in writes.items())
        self.commits.append(
            SimpleNamespace(
                records=records,
                changelog_topic=changelog_topic,
                source_offsets=dict(source_offsets),
                group=group,
            )
        )
        offsets = {}
        for (topic, partition), bucket in sorted(records.items()):
            if topic == changelog_topic and bucket:
                self.next_offset += len(bucket)
                offsets[partition] = self.next_offset - 1
        return offsets


GROUP = GroupMetadata("app", 1, "member-1")


class Echo(Processor):
    """A processor: each record's value is stored under its key and sent to ``OUTPUT``."""

    def __init__(self, partition: int, store: PartitionStore, outbox: Outbox) -> None:
        super().__init__(
            partition, store, outbox, DeadLetterRoute(SOURCE, DEAD_LETTERS, 2 * MAX_BATCH_BYTES)
        )

    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        self.store.put(key, value)
        self.outbox.add(OUTPUT, self.partition, key, value)
        self.outcomes["accepted"] += 1


def owned_partitions(
    tmp_path: Path, monkeypatch, factory: Callable = Echo, watch: CommitWatch | None = None  # noqa: ANN001
) -> OwnedPartitions:
    """OwnedPartitions of ``SOURCE`` with real stores under ``tmp_path`` and a FakeWriter;
    ``stable_offsets`` lists the partitions whose stable offset was awaited, in order."""
    FakeWriter.made = []
    monkeypatch.setattr(partitions_module, "TransactionalWriter", FakeWriter)
    awaited: list[int] = []

    async def stable_offset(client_kwargs, group_id, tp, **takeover) -> list[str]:  # noqa: ANN001
        awaited.append(tp.partition)
        owned.takeovers.append(takeover)
        return []

    monkeypatch.setattr(partitions_module, "stable_offset", stable_offset)

    async def no_restore(store, topic, partition, client_kwargs) -> int:  # noqa: ANN001
        return 0

    monkeypatch.setattr(partitions_module, "restore_partition", no_restore)
    owned = OwnedPartitions(
        name="echo",
        app_id="app",
        source_topic=SOURCE,
        changelog_topic=CHANGELOG,
        data_dir=tmp_path,
        rocksdb_options=rocksdb_options(SMALL, SMALL),
        client_kwargs={},
        factory=factory,
        transactional_id=lambda: "app-echo-w1",
        watch=watch,
    )
    owned.stable_offsets = awaited
    owned.takeovers = []
    return owned


def writer_of(owned: OwnedPartitions) -> FakeWriter:
    """The stage's writer."""
    return owned.writer()
