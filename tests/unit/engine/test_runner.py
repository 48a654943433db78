"""``StageRunner`` against real stores and a stand-in for Kafka: what a batch applies, when
commits happen (at most one in flight, at most every commit interval, everything at a
revocation), what the order check does, and what ``start_after`` holds back."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import TP

from app.engine import runner as runner_module
from app.engine.runner import StageRunner
from app.engine.transactions import OutputRefused, PartitionFenced
from app.metrics import Metrics
from tests.unit.engine.fakes import OUTPUT, SOURCE, owned_partitions, writer_of

LONG = 60.0  # an interval that does not pass during a test


class Consumer:
    """The part of faust's consumer the runner uses."""

    def __init__(self, partitions: set[int]) -> None:
        self.assigned = {TP(SOURCE, p) for p in partitions}
        self.seeks: list[tuple[int, int]] = []

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp.partition, offset))


def event(partition: int, offset: int, generation: int = 1, value: bytes | None = None):  # noqa: ANN201
    message = SimpleNamespace(
        partition=partition,
        offset=offset,
        key=b"k%d" % offset,
        value=value if value is not None else b"v%d" % offset,
        generation_id=generation,
        tp=TP(SOURCE, partition),
    )
    return SimpleNamespace(message=message)


def batch(partition: int, offsets: range | list[int], generation: int = 1) -> list:
    return [event(partition, o, generation) for o in offsets]


@pytest.fixture
def make(tmp_path, monkeypatch):
    """make(commit_s=..., ...) -> a runner over partitions 0-3 of SOURCE, assigned in
    generation 1."""

    def make_(
        commit_s: float = 0.0,
        publish_s: float = LONG,
        batch_max: int = 100,
        assigned: set[int] = frozenset({0, 1, 2, 3}),
        start_after: asyncio.Event | None = None,
    ) -> StageRunner:
        owned = owned_partitions(tmp_path, monkeypatch)
        app = SimpleNamespace(consumer_generation_id=1, consumer=Consumer(set(assigned)))
        runner = StageRunner(
            app, owned, Metrics(), batch_max, publish_s, commit_s, start_after=start_after
        )
        runner.on_assigned(1)
        return runner

    return make_


async def settle() -> None:
    """Let a background commit against the stand-in writer finish."""
    for _ in range(5):
        await asyncio.sleep(0)


def committed_offsets(runner: StageRunner, partition: int) -> list[int]:
    """The input offsets committed for ``partition``, commit after commit."""
    return [
        c.source_offsets[TopicPartition(SOURCE, partition)]
        for c in writer_of(runner.owned, partition).commits
    ]


async def test_nothing_is_applied_outside_an_assignment(make) -> None:
    runner = make()
    await runner.on_revoked(set())  # between a revocation and the next assignment
    await runner.process_batch(batch(0, range(3)))
    assert runner.owned.partitions == set()


async def test_a_batch_opens_its_partitions_applies_each_and_commits_them(make) -> None:
    runner = make()
    await runner.process_batch([*batch(0, range(3)), *batch(2, range(2))])
    await settle()

    assert runner.owned.partitions == {0, 2}
    assert committed_offsets(runner, 0) == [3] and committed_offsets(runner, 2) == [2]
    [commit] = writer_of(runner.owned, 0).commits
    assert [key for key, _, _ in commit.records[(OUTPUT, 0)]] == [b"k0", b"k1", b"k2"]
    assert runner.owned.processor(0).store.committed().get(b"k2") == b"v2"


async def test_records_of_another_generation_or_partition_are_left_to_their_new_owner(make) -> None:
    runner = make(assigned={0})
    await runner.process_batch([event(0, 0, generation=0), event(1, 0), event(0, 1, generation=2)])
    assert runner.owned.partitions == set()  # none was this assignment's


async def test_commits_wait_for_the_interval_and_commit_due_sends_what_is_left(make) -> None:
    runner = make(commit_s=0.3)
    await runner.process_batch(batch(1, range(2)))  # the first batch commits at once
    await settle()
    await runner.process_batch(batch(1, [2]))
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 1) == [2]  # offset 2 applied, not committed yet

    await asyncio.sleep(0.35)
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 1) == [2, 3]


async def test_one_commit_in_flight_at_a_time_and_the_next_takes_what_waited(make) -> None:
    runner = make()
    await runner.process_batch(batch(0, [0]))  # opens the partition
    await settle()
    gate = writer_of(runner.owned, 0).gate = asyncio.Event()
    await runner.process_batch(batch(0, [1]))  # its commit waits at the gate
    await runner.process_batch(batch(0, [2, 3]))  # applied; no second commit meanwhile
    await settle()
    assert committed_offsets(runner, 0) == [1]

    gate.set()
    await settle()
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 0) == [1, 2, 4]


async def test_shares_are_published_with_a_batch_that_is_not_full_or_after_the_interval(make) -> None:
    runner = make(batch_max=3)
    await runner.process_batch(batch(0, [0]))  # short batch: the stream has caught up
    await settle()
    await runner.process_batch(batch(0, [1, 2, 3]))  # full batch: a backlog, publish later
    await settle()
    assert runner.owned.processor(0).publish_asks == [True, False]
    await runner.publish_pending()  # the quiet-stream timer publishes what was left
    assert runner.owned.processor(0).publish_asks == [True, False, True]
    await runner.publish_pending()  # nothing left: nothing asked
    assert runner.owned.processor(0).publish_asks == [True, False, True]


async def test_a_revocation_commits_everything_applied_then_closes(make) -> None:
    runner = make(commit_s=LONG)
    await runner.process_batch(batch(3, range(2)))
    await settle()
    await runner.process_batch(batch(3, [2, 3]))  # applied, left for the interval
    assert committed_offsets(runner, 3) == [2]

    await runner.on_revoked({3})

    assert committed_offsets(runner, 3) == [2, 4]
    assert runner.owned.partitions == set() and writer_of(runner.owned, 3).stopped
    await runner.process_batch(batch(3, [4]))  # before the next assignment: not applied
    assert runner.owned.partitions == set()


async def test_a_fenced_partition_is_closed_and_its_records_ignored_until_reassigned(make) -> None:
    runner = make()
    await runner.process_batch(batch(2, [0]))
    await settle()
    writer_of(runner.owned, 2).fail = PartitionFenced("app-echo-2")
    await runner.process_batch(batch(2, [1]))
    await settle()
    await runner.process_batch(batch(2, [2]))  # after the fence: not ours to apply
    assert runner.owned.partitions == set()  # closed when the fenced commit was joined

    # the rebalance that follows a fence: the partition comes back from its committed state
    await runner.on_revoked({2})
    runner._app.consumer_generation_id = 2  # noqa: SLF001
    runner.on_assigned(2)
    await runner.process_batch(batch(2, [1, 2], generation=2))
    assert runner.owned.processor(2).applied_offset == 2
    await settle()
    assert committed_offsets(runner, 2) == [3]  # the new writer's commit: offsets 1-2 again


async def test_the_first_record_beyond_the_applied_offset_seeks_back_to_it(make) -> None:
    runner = make(commit_s=LONG)
    consumer = runner._app.consumer  # noqa: SLF001
    await runner.process_batch(batch(1, [5, 6]))  # records 0-4 were skipped on the way
    assert consumer.seeks == [(1, 0)]
    assert runner.owned.processor(1).applied_offset == -1

    await runner.process_batch(batch(1, range(7)))  # the re-read
    assert runner.owned.processor(1).applied_offset == 6


async def test_a_commit_refused_for_good_ends_the_worker(make, monkeypatch) -> None:
    class Exited(Exception):
        pass

    calls: list[str] = []

    def fatal(what: str) -> None:
        calls.append(what)
        raise Exited(what)

    monkeypatch.setattr(runner_module, "fatal", fatal)
    runner = make()
    await runner.process_batch(batch(0, [0]))
    await settle()
    writer_of(runner.owned, 0).fail = OutputRefused(OUTPUT, 0, 9, 1, MessageSizeTooLargeError())
    await runner.process_batch(batch(0, [1]))
    await settle()

    assert len(calls) == 1 and calls[0].startswith("echo: committing failed: out[0]")
    refused = runner._metrics.produce_refused.labels(OUTPUT, "MessageSizeTooLargeError")  # noqa: SLF001
    assert refused._value.get() == 1  # noqa: SLF001
    with pytest.raises(Exited):
        await runner.commit_due()  # joining the failed commit


async def test_ready_once_every_assigned_partition_is_open(make) -> None:
    runner = make(assigned={0, 1})
    assert not runner.ready
    await runner.open_assigned(1)
    assert runner.ready and runner.owned.partitions == {0, 1}


async def test_batches_wait_for_start_after_then_run_and_wait_only_once(make) -> None:
    bootstrapped = asyncio.Event()
    runner = make(start_after=bootstrapped)

    first = asyncio.ensure_future(runner.process_batch(batch(0, [0])))
    await asyncio.sleep(0.05)
    assert not first.done() and runner.owned.partitions == set()

    bootstrapped.set()
    await asyncio.wait_for(first, 1)
    assert runner.owned.processor(0).applied_offset == 0
    bootstrapped.clear()  # the runner does not look again once it has started
    await asyncio.wait_for(runner.process_batch(batch(0, [1])), 1)
    assert runner.owned.processor(0).applied_offset == 1


def _reader_and_read(tmp_path, monkeypatch, read_assigned: set[int]):  # noqa: ANN001, ANN202
    """A runner of SOURCE (partitions 0-1) that requires a stage of ``props-in``, whose
    partitions ``read_assigned`` are this worker's."""
    from app.engine.partitions import OwnedPartitions
    from app.engine.store import rocksdb_options
    from tests.unit.engine.fakes import Echo

    owned = owned_partitions(tmp_path / "reader", monkeypatch)
    read_owned = OwnedPartitions(
        name="props", app_id="app", source_topic="props-in", changelog_topic="props-cl",
        data_dir=tmp_path / "read", rocksdb_options=rocksdb_options(1 << 20, 1 << 20),
        client_kwargs={}, factory=Echo,
    )
    consumer = Consumer({0, 1})
    consumer.assigned |= {TP("props-in", p) for p in read_assigned}
    app = SimpleNamespace(consumer_generation_id=1, consumer=consumer)
    read = StageRunner(app, read_owned, Metrics(), 100, LONG, 0.0)
    reader = StageRunner(app, owned, Metrics(), 100, LONG, 0.0, requires=read)
    read.on_assigned(1)
    reader.on_assigned(1)
    return reader, read


async def test_a_stage_opens_the_partition_it_reads_of_another_stage_before_processing(
    tmp_path, monkeypatch
):
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0, 1})
    assert read.owned.partitions == set()
    await reader.process_batch(batch(0, range(3)))
    assert read.owned.partitions == {0}  # opened (and restored) first
    assert reader.owned.processor(0).applied_offset == 2


async def test_a_partition_whose_read_partition_is_not_assigned_here_stops_the_worker(
    tmp_path, monkeypatch
):
    stops: list[str] = []
    monkeypatch.setattr(runner_module, "fatal", stops.append)
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0})
    await reader.process_batch(batch(0, range(2)) + batch(1, range(2)))
    assert reader.owned.processor(0).applied_offset == 1
    assert reader.owned.processor(1) is None and read.owned.partitions == {0}
    assert len(stops) == 1 and "same partition count" in stops[0]


async def test_a_read_partition_lost_meanwhile_holds_its_reader_back_until_the_rebalance(
    tmp_path, monkeypatch
):
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0, 1})
    read._lost.add(1)  # fenced by a newer owner in this generation
    await reader.process_batch(batch(1, range(2)))
    await reader.process_batch(batch(1, range(2, 4)))
    assert reader.owned.processor(1) is None and reader._lost == {1}
