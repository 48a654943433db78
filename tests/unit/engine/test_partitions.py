"""``OwnedPartitions``: opening fences with the partition's own transactional id; a commit
publishes the sealed work (outputs, changelog, input offset) and only then writes RocksDB; a
fenced commit drops the partition's uncommitted work; a failed commit writes nothing."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from app.engine.store import CHECKPOINT_KEY
from app.engine.transactions import OutputRefused, PartitionFenced
from app.stages.applied import APPLIED_KEY
from tests.unit.engine.fakes import CHANGELOG, OUTPUT, SOURCE, owned_partitions, writer_of

NOW = 1_800_000_000_000


@pytest.fixture
def owned(tmp_path, monkeypatch):
    return owned_partitions(tmp_path, monkeypatch)


def feed(processor, start: int, *pairs: tuple[bytes, bytes]) -> None:  # noqa: ANN001
    for i, (key, value) in enumerate(pairs):
        processor.process(start + i, key, value, NOW)


async def test_opening_starts_the_partitions_own_writer_once(owned) -> None:
    first = await owned.open(3)
    again = await owned.open(3)
    assert first is again and owned.partitions == {3}
    writer = writer_of(owned, 3)
    assert writer.started and writer.transactional_id == "app-echo-3"
    assert first.applied_offset == -1


async def test_a_commit_publishes_outputs_changelog_and_input_offset_then_writes_rocksdb(owned) -> None:
    processor = await owned.open(2)
    feed(processor, 0, (b"a", b"1"), (b"b", b"2"))

    sealed = owned.seal(2, NOW, publish=True)
    assert sealed is not None and sealed.source_offset == 2  # the next offset to read
    assert processor.store.committed().get(b"a") is None  # nothing in RocksDB before the commit

    fenced = await owned.commit([sealed])

    assert fenced == set()
    [commit] = writer_of(owned, 2).commits
    assert commit.source_offsets == {TopicPartition(SOURCE, 2): 2}
    assert commit.group_id == "app"
    assert commit.records[(OUTPUT, 2)] == [(b"a", b"1", []), (b"b", b"2", [])]
    assert sorted(commit.records[(CHANGELOG, 2)]) == [
        (b"a", b"1", []), (b"b", b"2", []), (APPLIED_KEY, b"1", [])
    ]
    committed = processor.store.committed()
    assert (committed.get(b"a"), committed.get(b"b"), committed.get(APPLIED_KEY)) == (b"1", b"2", b"1")
    assert processor.store.checkpoint() == 2  # the changelog offset the writer reported
    assert processor.store.pending == {}


async def test_nothing_to_commit_seals_nothing(owned) -> None:
    await owned.open(0)
    assert owned.seal(0, NOW, publish=True) is None  # nothing applied, nothing to send
    assert owned.seal(7, NOW, publish=True) is None  # not open here


async def test_work_applied_while_a_commit_is_in_flight_waits_for_the_next_one(owned) -> None:
    processor = await owned.open(1)
    feed(processor, 0, (b"a", b"1"))
    sealed = owned.seal(1, NOW, publish=True)
    gate = writer_of(owned, 1).gate = asyncio.Event()
    commit = asyncio.ensure_future(owned.commit([sealed]))
    await asyncio.sleep(0)

    feed(processor, 1, (b"a", b"2"), (b"c", b"3"))  # processing goes on meanwhile
    assert processor.store.get(b"a") == b"2"  # reads see the newest write
    gate.set()
    assert await commit == set()

    committed = processor.store.committed()
    assert committed.get(b"a") == b"1" and committed.get(b"c") is None
    assert processor.store.pending == {b"a": b"2", b"c": b"3"}
    second = owned.seal(1, NOW, publish=True)
    assert second.source_offset == 3 and second.outbox.records[(OUTPUT, 1)] == [
        (b"a", b"2", []), (b"c", b"3", [])
    ]


async def test_a_fenced_partition_drops_all_its_uncommitted_work(owned) -> None:
    processor = await owned.open(4)
    feed(processor, 0, (b"a", b"1"))
    sealed = owned.seal(4, NOW, publish=True)
    feed(processor, 1, (b"b", b"2"))  # applied after the seal: pending
    writer_of(owned, 4).fail = PartitionFenced("app-echo-4")

    fenced = await owned.commit([sealed])

    assert fenced == {4}
    store = processor.store
    assert store.get(b"a") is None and store.get(b"b") is None  # sealed and pending dropped
    assert store.pending == {} and len(processor.outbox) == 0
    assert store.committed().get(b"a") is None and store.checkpoint() is None
    assert owned.partitions == {4}  # still open: the caller closes it


async def test_partitions_commit_concurrently_and_one_fenced_does_not_stop_the_others(owned) -> None:
    for partition in (0, 1, 2):
        feed(await owned.open(partition), 0, (b"k%d" % partition, b"v"))
    sealed = [owned.seal(p, NOW, True) for p in (0, 1, 2)]
    writer_of(owned, 1).fail = PartitionFenced("app-echo-1")

    fenced = await owned.commit(sealed, still_owned=lambda p: p != 2)

    assert fenced == {1}
    assert owned.processor(0).store.committed().get(b"k0") == b"v"
    assert owned.processor(1).store.committed().get(b"k1") is None
    assert owned.processor(2).store.committed().get(b"k2") == b"v"
    # each writer asks about its own partition before it would retry with a new producer
    assert [c.still_owned for c in writer_of(owned, 0).commits] == [True]
    assert [c.still_owned for c in writer_of(owned, 2).commits] == [False]


async def test_a_failed_commit_writes_nothing_and_a_restart_replays_the_batch(owned) -> None:
    processor = await owned.open(5)
    feed(processor, 0, (b"a", b"1"))
    sealed = owned.seal(5, NOW, publish=True)
    refused = OutputRefused(OUTPUT, 5, 2_000_000, 1, MessageSizeTooLargeError())
    writer_of(owned, 5).fail = refused

    with pytest.raises(OutputRefused):
        await owned.commit([sealed])

    store = processor.store
    assert store.committed().get(b"a") is None and store.committed().get(APPLIED_KEY) is None
    assert store.checkpoint() is None and store.committed().get(CHECKPOINT_KEY) is None
    assert store.get(b"a") == b"1"  # still sealed: no more work can be sealed (the worker exits)
    feed(processor, 1, (b"b", b"2"))
    with pytest.raises(RuntimeError, match="already in flight"):
        owned.seal(5, NOW, publish=True)

    await owned.close({5})
    again = await owned.open(5)
    assert again.applied_offset == -1 and again.store.get(b"a") is None  # offset 0 comes again
    assert owned.partitions == {5}


async def test_a_commit_waiting_on_the_brokers_is_watched_until_it_goes_through(tmp_path, monkeypatch):
    from app.engine.stall import CommitWatch
    from tests.unit.engine.fakes import owned_partitions as make

    watch = CommitWatch(0.0)  # any wait is a stall, to see what is watched
    owned = make(tmp_path, monkeypatch, watch=watch)
    processor = await owned.open(1)
    assert watch.stall() is None  # the opening is over
    feed(processor, 0, (b"a", b"1"))
    writer_of(owned, 1).gate = asyncio.Event()
    commit = asyncio.ensure_future(owned.commit([owned.seal(1, NOW, publish=True)]))
    await asyncio.sleep(0.01)

    stall = watch.stall()
    assert stall is not None and stall.what == f"echo: commit of {SOURCE}[1]"
    writer_of(owned, 1).gate.set()
    assert await commit == set()
    assert watch.stall() is None


async def test_a_failed_commit_names_its_error_as_the_cause(tmp_path, monkeypatch):
    from aiokafka.errors import NotEnoughReplicasError

    from app.engine.stall import CommitWatch
    from tests.unit.engine.fakes import owned_partitions as make

    errors: list[BaseException] = []
    owned = make(tmp_path, monkeypatch, watch=CommitWatch(0.0, on_error=errors.append))
    processor = await owned.open(0)
    feed(processor, 0, (b"a", b"1"))
    writer_of(owned, 0).fail = NotEnoughReplicasError()
    with pytest.raises(NotEnoughReplicasError):
        await owned.commit([owned.seal(0, NOW, publish=True)])
    assert [type(e) for e in errors] == [NotEnoughReplicasError]
