"""``OwnedPartitions``: opening waits for the previous owner's transactions and starts the
stage's one writer; a round publishes the sealed work of all its partitions (outputs,
changelogs, input offsets) in one transaction under the group's metadata and only then writes
RocksDB; a fenced round drops the uncommitted work of all its partitions; a failed round
writes nothing."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError

from app.engine.store import CHECKPOINT_KEY
from app.engine.transactions import Fenced, OutputRefused
from app.engine.applied import APPLIED_KEY
from tests.unit.engine.fakes import CHANGELOG, GROUP, FakeWriter, OUTPUT, SOURCE, owned_partitions, writer_of

NOW = 1_800_000_000_000


@pytest.fixture
def owned(tmp_path, monkeypatch):
    return owned_partitions(tmp_path, monkeypatch)


def feed(processor, start: int, *pairs: tuple[bytes, bytes]) -> None:  # noqa: ANN001
    for i, (key, value) in enumerate(pairs):
        processor.process(start + i, key, value, NOW)


async def test_opening_waits_for_a_stable_offset_and_starts_the_stages_one_writer(owned) -> None:
    first = await owned.open(3)
    again = await owned.open(3)
    await owned.open(5)
    assert first is again and owned.partitions == {3, 5}
    assert owned.stable_offsets == [3, 5]  # once per opening, before the restore
    # It may fence a dead owner of the stage's changelog partition, never this worker.
    takeover = owned.takeovers[0]
    assert takeover["changelog"] == TopicPartition(CHANGELOG, 3)
    assert takeover["own_id"] == "app-echo-w1"
    assert takeover["stage_ids"].fullmatch("app-echo-0123456789ab")
    assert not takeover["stage_ids"].fullmatch("app-views-0123456789ab")
    [writer] = FakeWriter.made
    assert writer.started and writer.transactional_id == "app-echo-w1"
    assert first.applied_offset == -1


async def test_a_commit_publishes_outputs_changelog_and_input_offset_then_writes_rocksdb(owned) -> None:
    processor = await owned.open(2)
    feed(processor, 0, (b"a", b"1"), (b"b", b"2"))

    sealed = owned.seal(2, NOW)
    assert sealed is not None and sealed.source_offset == 2  # the next offset to read
    assert processor.store.committed().get(b"a") is None  # nothing in RocksDB before the commit

    fenced = await owned.commit([sealed], GROUP)

    assert fenced == set()
    [commit] = writer_of(owned).commits
    assert commit.source_offsets == {TopicPartition(SOURCE, 2): 2}
    assert commit.group == GROUP
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
    assert owned.seal(0, NOW) is None  # nothing applied, nothing to send
    assert owned.seal(7, NOW) is None  # not open here


async def test_work_applied_while_a_commit_is_in_flight_waits_for_the_next_one(owned) -> None:
    processor = await owned.open(1)
    feed(processor, 0, (b"a", b"1"))
    sealed = owned.seal(1, NOW)
    gate = writer_of(owned).gate = asyncio.Event()
    commit = asyncio.ensure_future(owned.commit([sealed], GROUP))
    await asyncio.sleep(0)

    feed(processor, 1, (b"a", b"2"), (b"c", b"3"))  # processing goes on meanwhile
    assert processor.store.get(b"a") == b"2"  # reads see the newest write
    gate.set()
    assert await commit == set()

    committed = processor.store.committed()
    assert committed.get(b"a") == b"1" and committed.get(b"c") is None
    assert processor.store.pending == {b"a": b"2", b"c": b"3"}
    second = owned.seal(1, NOW)
    assert second.source_offset == 3 and second.outbox.records[(OUTPUT, 1)] == [
        (b"a", b"2", []), (b"c", b"3", [])
    ]


async def test_a_fenced_partition_drops_all_its_uncommitted_work(owned) -> None:
    processor = await owned.open(4)
    feed(processor, 0, (b"a", b"1"))
    sealed = owned.seal(4, NOW)
    feed(processor, 1, (b"b", b"2"))  # applied after the seal: pending
    writer_of(owned).fail = Fenced("generation 1 refused")

    fenced = await owned.commit([sealed], GROUP)

    assert fenced == {4}
    store = processor.store
    assert store.get(b"a") is None and store.get(b"b") is None  # sealed and pending dropped
    assert store.pending == {} and len(processor.outbox) == 0
    assert store.committed().get(b"a") is None and store.checkpoint() is None
    assert owned.partitions == {4}  # still open: the caller closes it


async def test_one_round_commits_every_partition_in_one_transaction(owned) -> None:
    for partition in (0, 1, 2):
        feed(await owned.open(partition), 0, (b"k%d" % partition, b"v"))
    sealed = [owned.seal(p, NOW) for p in (0, 1, 2)]

    assert await owned.commit(sealed, GROUP) == set()

    [commit] = writer_of(owned).commits
    assert commit.source_offsets == {TopicPartition(SOURCE, p): 1 for p in (0, 1, 2)}
    assert {tp for tp in commit.records if tp[0] == CHANGELOG} == {(CHANGELOG, p) for p in (0, 1, 2)}
    for partition in (0, 1, 2):
        store = owned.processor(partition).store
        assert store.committed().get(b"k%d" % partition) == b"v"
        assert store.checkpoint() is not None  # its own changelog partition's last offset
    assert len({owned.processor(p).store.checkpoint() for p in (0, 1, 2)}) == 3


async def test_a_fenced_round_drops_the_work_of_every_partition_in_it(owned) -> None:
    for partition in (0, 1, 2):
        feed(await owned.open(partition), 0, (b"k%d" % partition, b"v"))
    sealed = [owned.seal(p, NOW) for p in (0, 1)]  # partition 2 is not in the round
    writer_of(owned).fail = Fenced("generation 1 refused")

    assert await owned.commit(sealed, GROUP) == {0, 1}

    for partition in (0, 1):
        store = owned.processor(partition).store
        assert store.get(b"k%d" % partition) is None and store.committed().get(b"k%d" % partition) is None
    assert owned.processor(2).store.get(b"k2") == b"v"  # pending, for the next round
    assert owned.partitions == {0, 1, 2}  # still open: the caller closes them


async def test_a_failed_commit_writes_nothing_and_a_restart_replays_the_batch(owned) -> None:
    processor = await owned.open(5)
    feed(processor, 0, (b"a", b"1"))
    sealed = owned.seal(5, NOW)
    refused = OutputRefused(OUTPUT, 5, 2_000_000, 1, MessageSizeTooLargeError())
    writer_of(owned).fail = refused

    with pytest.raises(OutputRefused):
        await owned.commit([sealed], GROUP)

    store = processor.store
    assert store.committed().get(b"a") is None and store.committed().get(APPLIED_KEY) is None
    assert store.checkpoint() is None and store.committed().get(CHECKPOINT_KEY) is None
    assert store.get(b"a") == b"1"  # still sealed: no more work can be sealed (the worker exits)
    feed(processor, 1, (b"b", b"2"))
    with pytest.raises(RuntimeError, match="already in flight"):
        owned.seal(5, NOW)

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
    writer_of(owned).gate = asyncio.Event()
    commit = asyncio.ensure_future(owned.commit([owned.seal(1, NOW)], GROUP))
    await asyncio.sleep(0.01)

    stall = watch.stall()
    assert stall is not None and stall.what == f"echo: commit of {SOURCE}[1]"
    writer_of(owned).gate.set()
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
    writer_of(owned).fail = NotEnoughReplicasError()
    with pytest.raises(NotEnoughReplicasError):
        await owned.commit([owned.seal(0, NOW)], GROUP)
    assert [type(e) for e in errors] == [NotEnoughReplicasError]
