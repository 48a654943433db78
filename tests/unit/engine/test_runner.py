"""``StageRunner`` against real stores and stand-ins for Kafka: what a fetch applies, where
the reader is told to read, when rounds are committed (one transaction over every changed
partition, at most one in flight, the next as soon as it ends but at most every commit
interval, everything at a revocation), what a fenced round does, what the order check does,
and what ``start_after`` holds back."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from faust.types import TP

from app.engine import runner as runner_module
from app.engine.runner import StageRunner
from app.engine.transactions import Fenced, OutputRefused
from app.metrics import Metrics
from tests.unit.engine.fakes import GROUP, OUTPUT, SOURCE, Echo, owned_partitions, writer_of

LONG = 60.0  # an interval that does not pass during a test


class Consumer:
    """The part of faust's consumer the runner uses: the group's assignment."""

    def __init__(self, partitions: set[int]) -> None:
        self.assigned = {TP(SOURCE, p) for p in partitions}

    def assignment(self) -> set[TP]:
        return set(self.assigned)


class Reader:
    """A stand-in for ``StageReader``: what the runner asks it to read, and fetches to hand out."""

    def __init__(self) -> None:
        self.wanted: dict[int, int] = {}  # partition -> offset it was added at
        self.seeks: list[tuple[int, int]] = []
        self.fetches: asyncio.Queue[dict] = asyncio.Queue()
        self.started = self.stopped = False

    def add(self, partition: int, offset: int) -> None:
        self.wanted[partition] = offset

    def remove(self, partitions) -> None:  # noqa: ANN001
        for partition in partitions:
            self.wanted.pop(partition, None)

    def seek(self, partition: int, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def fetch(self, max_records: int) -> dict:
        return await self.fetches.get()


def record(offset: int, value: bytes | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        offset=offset, key=b"k%d" % offset, value=value if value is not None else b"v%d" % offset
    )


def batch(partition: int, offsets: range | list[int]) -> dict[int, list]:
    return {partition: [record(o) for o in offsets]}


@pytest.fixture
def make(tmp_path, monkeypatch):
    """await make(commit_s=..., ...) -> a runner over partitions 0-3 of SOURCE, assigned in
    generation 1 and opened (unless ``open_=False``)."""

    async def make_(
        factory=Echo,  # noqa: ANN001
        commit_s: float = 0.0,
        batch_max: int = 100,
        assigned: set[int] = frozenset({0, 1, 2, 3}),
        start_after: asyncio.Event | None = None,
        open_: bool = True,
        max_uncommitted: int = 10_000,
        gap_s: float = 0.0,
    ) -> StageRunner:
        owned = owned_partitions(tmp_path, monkeypatch, factory=factory)
        app = SimpleNamespace(consumer_generation_id=1, consumer=Consumer(set(assigned)))
        runner = StageRunner(
            app, owned, Reader(), Metrics(), batch_max, commit_s,
            max_uncommitted=max_uncommitted, start_after=start_after, group_metadata=lambda: GROUP,
            round_gap_s=gap_s,
        )
        runner.on_assigned(1)
        if open_:
            await runner.open_assigned(1)
        return runner

    return make_


def reader_of(runner: StageRunner) -> Reader:
    return runner._reader  # noqa: SLF001


async def settle() -> None:
    """Let a background commit against the stand-in writer finish."""
    for _ in range(5):
        await asyncio.sleep(0)


def committed_offsets(runner: StageRunner, partition: int) -> list[int]:
    """The input offsets committed for ``partition``, round after round."""
    tp = TopicPartition(SOURCE, partition)
    return [c.source_offsets[tp] for c in writer_of(runner.owned).commits if tp in c.source_offsets]


async def test_assigned_partitions_are_opened_and_read_from_after_their_applied_offset(make) -> None:
    runner = await make(assigned={0, 2}, open_=False)
    assert reader_of(runner).wanted == {}
    await runner.open_assigned(1)
    assert runner.owned.partitions == {0, 2}
    assert reader_of(runner).wanted == {0: 0, 2: 0}  # applied -1: from the first offset


async def test_a_fetch_between_a_revocation_and_an_assignment_is_read_again_not_applied(make) -> None:
    runner = await make(commit_s=LONG)
    await runner.process(batch(0, [0]))
    runner._app.consumer_generation_id = 2  # noqa: SLF001  (faust's new generation, not ours yet)
    await runner.process(batch(0, [1, 2]))
    assert runner.owned.processor(0).applied_offset == 0
    assert reader_of(runner).seeks == [(0, 1)]  # never skipped: fetched again from offset 1


async def test_a_fetch_applies_each_partition_and_commits_them_in_one_round(make) -> None:
    runner = await make()
    await runner.process({**batch(0, range(3)), **batch(2, range(2))})
    await settle()

    [commit] = writer_of(runner.owned).commits  # one transaction for both partitions
    assert commit.source_offsets == {TopicPartition(SOURCE, 0): 3, TopicPartition(SOURCE, 2): 2}
    assert commit.group == GROUP  # under the group member that read them
    assert [key for key, _, _ in commit.records[(OUTPUT, 0)]] == [b"k0", b"k1", b"k2"]
    assert [key for key, _, _ in commit.records[(OUTPUT, 2)]] == [b"k0", b"k1"]
    assert runner.owned.processor(0).store.committed().get(b"k2") == b"v2"


async def test_records_of_a_partition_not_assigned_or_not_open_are_not_applied(make) -> None:
    runner = await make(assigned={0}, open_=False)
    await runner.process({**batch(0, [0]), **batch(1, [0])})
    assert runner.owned.partitions == set()  # 0 is not open yet, 1 is not ours


async def test_commits_wait_for_the_interval_and_commit_due_sends_what_is_left(make) -> None:
    runner = await make(commit_s=0.3)
    await runner.process(batch(1, range(2)))  # the first batch commits at once
    await settle()
    await runner.process(batch(1, [2]))
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 1) == [2]  # offset 2 applied, not committed yet

    await asyncio.sleep(0.35)
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 1) == [2, 3]


async def test_one_commit_in_flight_at_a_time_and_the_next_takes_what_waited(make) -> None:
    runner = await make()
    await runner.process(batch(0, [0]))  # opens the partition
    await settle()
    gate = writer_of(runner.owned).gate = asyncio.Event()
    await runner.process(batch(0, [1]))  # its commit waits at the gate
    await runner.process(batch(0, [2, 3]))  # applied; no second commit meanwhile
    await settle()
    assert committed_offsets(runner, 0) == [1]

    gate.set()
    await settle()
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 0) == [1, 2, 4]


async def test_past_max_uncommitted_a_fetch_waits_for_the_commit_in_flight(make) -> None:
    runner = await make(commit_s=LONG, max_uncommitted=3)
    await runner.process(batch(0, [0]))  # the first fetch commits at once
    await settle()
    gate = writer_of(runner.owned).gate = asyncio.Event()
    await runner.process(batch(0, [1, 2, 3]))  # 3 uncommitted: committed now, waits at the gate
    blocked = asyncio.ensure_future(runner.process(batch(0, [4, 5, 6])))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # applied, then waiting for the commit in flight
    assert committed_offsets(runner, 0) == [1]

    gate.set()
    await asyncio.wait_for(blocked, 1)
    await settle()
    assert committed_offsets(runner, 0) == [1, 4, 7]


@pytest.mark.parametrize("early_timers", [False, True])
async def test_past_max_uncommitted_the_next_round_still_waits_for_the_round_gap(
    make, monkeypatch, early_timers
) -> None:
    """A catch-up round (the uncommitted limit reached) starts once the round in flight has
    ended and ``round_gap_s`` has passed, as any round: not at once, when the broker would
    still be completing the last transaction. Also when timers fire a little early, as
    uvloop's (whole milliseconds) do."""
    runner = await make(commit_s=LONG, max_uncommitted=3, gap_s=0.3)
    if early_timers:
        loop = asyncio.get_running_loop()
        call_later = loop.call_later
        monkeypatch.setattr(loop, "call_later", lambda delay, fn, *a: call_later(max(delay - 0.002, 0), fn, *a))
    await runner.process(batch(0, [0]))  # the first round: at once
    await settle()
    ended = runner._last_end  # noqa: SLF001
    assert committed_offsets(runner, 0) == [1] and ended > 0
    await runner.process(batch(0, [1, 2, 3]))  # 3 uncommitted: a round despite the interval
    assert committed_offsets(runner, 0) == [1]  # sealed and sent in the background
    await settle()
    assert committed_offsets(runner, 0) == [1, 4]
    assert time.monotonic() - ended >= 0.3  # not before the gap had passed


TICKS = "ticks"


class Ticker(Echo):
    """Echo with a punctuator every 0.2 s that sends how many records it has applied, when
    that changed (as a stage publishes its changed shares)."""

    def __init__(self, *args) -> None:  # noqa: ANN002
        super().__init__(*args)
        self.ticks: list[int] = []
        self._sent = 0
        self.schedule(0.2, self._tick)

    def _tick(self) -> None:
        applied = self.applied_offset + 1
        self.ticks.append(applied)
        if applied != self._sent:
            self.outbox.add(TICKS, 0, None, b"%d" % applied)
            self._sent = applied


def ticks_committed(runner: StageRunner) -> list[bytes]:
    return [v for c in writer_of(runner.owned).commits for _, v, _ in c.records.get((TICKS, 0), [])]


async def test_punctuators_run_at_most_every_interval_and_go_with_the_next_round(make) -> None:
    runner = await make(factory=Ticker, commit_s=0.0)
    await runner.process(batch(0, [0]))  # the first round: punctuators are due at once
    await settle()
    assert ticks_committed(runner) == [b"1"]
    await runner.process(batch(0, [1, 2]))  # a round within the interval: no punctuation
    await settle()
    assert ticks_committed(runner) == [b"1"]
    assert committed_offsets(runner, 0) == [1, 3]
    assert runner.owned.processor(1).ticks == [0]  # every open partition, due or not dirty

    await asyncio.sleep(0.25)
    await runner.commit_due()  # a quiet stream: the commit timer punctuates
    await settle()
    assert ticks_committed(runner) == [b"1", b"3"]
    assert committed_offsets(runner, 0) == [1, 3, 3]  # its own round, no record since
    await runner.commit_due()  # nothing due and nothing written: no round
    await settle()
    assert len(writer_of(runner.owned).commits) == 3


async def test_a_punctuator_that_writes_nothing_starts_no_round(make) -> None:
    runner = await make(factory=Ticker, commit_s=0.0)
    await runner.commit_due()
    await asyncio.sleep(0.25)
    await runner.commit_due()
    assert runner.owned.processor(0).ticks == [0, 0]
    assert writer_of(runner.owned).commits == []


async def test_every_punctuator_runs_before_a_handover(make) -> None:
    runner = await make(factory=Ticker, commit_s=LONG)
    await runner.process(batch(2, [0]))  # the first round, with the first punctuation
    await runner.process(batch(2, [1]))  # left for the interval
    await settle()
    await runner.on_revoked({2})  # not due yet, run anyway: nothing waits for the next owner
    assert ticks_committed(runner) == [b"1", b"2"]
    assert committed_offsets(runner, 2) == [1, 2]


async def test_a_revocation_commits_everything_applied_then_closes(make) -> None:
    runner = await make(commit_s=LONG)
    await runner.process(batch(3, range(2)))
    await settle()
    await runner.process(batch(3, [2, 3]))  # applied, left for the interval
    assert committed_offsets(runner, 3) == [2]

    await runner.on_revoked({3})

    assert committed_offsets(runner, 3) == [2, 4]
    assert 3 not in runner.owned.partitions
    assert 3 not in reader_of(runner).wanted
    await runner.process(batch(3, [4]))  # before the next assignment: not applied
    assert 3 not in runner.owned.partitions


async def test_a_fenced_round_closes_all_its_partitions_until_reassigned(make) -> None:
    runner = await make()
    await runner.process(batch(2, [0]))
    await settle()
    writer = writer_of(runner.owned)
    writer.fail = Fenced("generation 1 refused")
    await runner.process({**batch(2, [1]), **batch(3, [0])})
    await settle()
    writer.fail = None
    await runner.process({**batch(2, [2]), **batch(3, [1])})  # after the fence: not applied
    assert runner.owned.partitions == {0, 1}  # both closed when the fenced round was joined
    assert set(reader_of(runner).wanted) == {0, 1}
    assert committed_offsets(runner, 3) == []
    assert runner._metrics.rounds_fenced.labels("echo")._value.get() == 1  # noqa: SLF001

    # the rebalance that follows a fence: the partition comes back from its committed state
    await runner.on_revoked({0, 1, 3})
    runner._app.consumer_generation_id = 2  # noqa: SLF001
    runner.on_assigned(2)
    await runner.open_assigned(2)
    assert reader_of(runner).wanted[2] == 1  # read again from after the committed offset 0
    await runner.process(batch(2, [1, 2]))
    assert runner.owned.processor(2).applied_offset == 2
    await settle()
    assert committed_offsets(runner, 2) == [1, 3]  # offsets 1-2 again, after the fenced round


async def test_a_partition_fenced_while_still_assigned_asks_the_group_to_rebalance(make, monkeypatch):
    """A transaction aborted by its coordinator (kept open past its timeout while brokers were
    down) fences the partition without a new owner: only a rebalance restarts it."""
    asked: list[object] = []
    monkeypatch.setattr(runner_module, "request_rejoin", asked.append)
    runner = await make()
    await runner.process(batch(2, [0]))
    await settle()
    assert asked == []  # a commit that goes through asks nothing
    writer_of(runner.owned).fail = Fenced("transaction aborted by its coordinator")
    await runner.process(batch(2, [1]))
    await settle()
    assert asked == [runner._app]  # noqa: SLF001


async def test_a_round_fenced_after_its_partitions_moved_asks_nothing(make, monkeypatch):
    asked: list[object] = []
    monkeypatch.setattr(runner_module, "request_rejoin", asked.append)
    runner = await make(commit_s=LONG)
    await runner.process(batch(2, [0]))  # the first round: at once
    await runner.process(batch(2, [1]))  # left for the interval
    await settle()
    writer_of(runner.owned).fail = Fenced("generation 1 refused")
    runner._app.consumer.assigned.discard(TP(SOURCE, 2))  # noqa: SLF001 - moved elsewhere
    await runner.commit_all()
    assert asked == [] and 2 not in runner.owned.partitions


async def test_a_round_fenced_in_an_older_generation_asks_nothing(make, monkeypatch):
    asked: list[object] = []
    monkeypatch.setattr(runner_module, "request_rejoin", asked.append)
    runner = await make(commit_s=LONG)
    await runner.process(batch(1, [0]))  # the first round: at once
    await runner.process(batch(1, [1]))  # left for the interval
    await settle()
    writer_of(runner.owned).fail = Fenced("generation 1 refused")
    runner._app.consumer_generation_id = 2  # noqa: SLF001 - the group has moved on
    await runner.commit_all()  # sealed under generation 1 (GROUP)
    assert asked == [] and 1 not in runner.owned.partitions


async def test_the_next_round_starts_as_soon_as_the_last_one_ends(make) -> None:
    """Commit continuously: work applied while a round is in flight is committed when it
    ends, with no other trigger (no fetch, no timer)."""
    runner = await make(commit_s=0.0)
    await runner.process(batch(0, [0]))
    await settle()
    gate = writer_of(runner.owned).gate = asyncio.Event()
    await runner.process(batch(0, [1]))  # its round waits at the gate
    await runner.process(batch(0, [2, 3]))  # applied while it is in flight
    await settle()
    assert committed_offsets(runner, 0) == [1]
    gate.set()
    for _ in range(50):
        await asyncio.sleep(0.01)
        if committed_offsets(runner, 0) == [1, 2, 4]:
            break
    assert committed_offsets(runner, 0) == [1, 2, 4]


async def test_rounds_start_at_most_once_per_commit_interval(make) -> None:
    runner = await make(commit_s=1.0)
    first = time.monotonic()  # before the first round's start
    await runner.process(batch(0, [0]))  # the first round: at once
    await settle()
    await runner.process(batch(0, [1]))
    while committed_offsets(runner, 0) == [1] and time.monotonic() - first < 5:
        await asyncio.sleep(0.01)  # with no other trigger than the round's end
    assert committed_offsets(runner, 0) == [1, 2]
    assert time.monotonic() - first >= 1.0  # not before the interval had passed


async def test_the_next_round_waits_for_the_round_gap_after_the_last_one_ended(make) -> None:
    """A round begun right after the last one ended would meet the broker still completing
    that transaction (and wait for a retry): the next one starts ``round_gap_s`` after it, even
    with no commit interval and work waiting, with no other trigger (no fetch, no timer)."""
    runner = await make(commit_s=0.0, gap_s=0.3)
    await runner.process(batch(0, [0]))  # the first round: at once
    await settle()
    ended = time.monotonic()  # after the first round's end
    await runner.process(batch(0, [1]))  # no round: the first has just ended
    await runner.commit_due()
    await settle()
    assert committed_offsets(runner, 0) == [1]
    while committed_offsets(runner, 0) == [1] and time.monotonic() - ended < 5:
        await asyncio.sleep(0.01)
    assert committed_offsets(runner, 0) == [1, 2]
    assert time.monotonic() - ended >= 0.3  # not before the gap had passed


async def test_the_first_record_beyond_the_applied_offset_seeks_back_to_it(make) -> None:
    runner = await make(commit_s=LONG)
    await runner.process(batch(1, [5, 6]))  # records 0-4 were skipped on the way
    assert reader_of(runner).seeks == [(1, 0)]
    assert runner.owned.processor(1).applied_offset == -1

    await runner.process(batch(1, range(7)))  # the re-read
    assert runner.owned.processor(1).applied_offset == 6


async def test_a_commit_refused_for_good_ends_the_worker(make, monkeypatch) -> None:
    class Exited(Exception):
        pass

    calls: list[str] = []

    def fatal(what: str) -> None:
        calls.append(what)
        raise Exited(what)

    monkeypatch.setattr(runner_module, "fatal", fatal)
    runner = await make()
    await runner.process(batch(0, [0]))
    await settle()
    writer_of(runner.owned).fail = OutputRefused(OUTPUT, 0, 9, 1, MessageSizeTooLargeError())
    await runner.process(batch(0, [1]))
    await settle()

    assert len(calls) == 1 and calls[0].startswith("echo: committing failed: out[0]")
    refused = runner._metrics.produce_refused.labels(OUTPUT, "MessageSizeTooLargeError")  # noqa: SLF001
    assert refused._value.get() == 1  # noqa: SLF001
    with pytest.raises(Exited):
        await runner.commit_due()  # joining the failed commit


async def test_ready_once_every_assigned_partition_is_open(make) -> None:
    runner = await make(assigned={0, 1}, open_=False)
    assert not runner.ready
    await runner.open_assigned(1)
    assert runner.ready and runner.owned.partitions == {0, 1}


async def test_run_waits_for_start_after_opens_what_is_assigned_and_applies_each_fetch(make) -> None:
    bootstrapped = asyncio.Event()
    runner = await make(assigned={0}, start_after=bootstrapped, open_=False)
    reader = reader_of(runner)
    task = asyncio.ensure_future(runner.run())
    try:
        await asyncio.sleep(0.05)
        assert not reader.started and runner.owned.partitions == set()

        bootstrapped.set()
        reader.fetches.put_nowait(batch(0, [0, 1]))
        for _ in range(50):
            await asyncio.sleep(0.01)
            if runner.owned.processor(0) and runner.owned.processor(0).applied_offset == 1:
                break
        assert reader.started and reader.wanted == {0: 0}
        assert runner.owned.processor(0).applied_offset == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert reader.stopped


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
        transactional_id=lambda: "app-props-w1",
    )
    consumer = Consumer({0, 1})
    consumer.assigned |= {TP("props-in", p) for p in read_assigned}
    app = SimpleNamespace(consumer_generation_id=1, consumer=consumer)
    read = StageRunner(app, read_owned, Reader(), Metrics(), 100, 0.0,
                       group_metadata=lambda: GROUP)
    reader = StageRunner(app, owned, Reader(), Metrics(), 100, 0.0, requires=read,
                         group_metadata=lambda: GROUP)
    read.on_assigned(1)
    reader.on_assigned(1)
    return reader, read


async def test_a_stage_opens_the_partition_it_reads_of_another_stage_before_processing(
    tmp_path, monkeypatch
):
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0, 1})
    assert read.owned.partitions == set()
    await reader.open_assigned(1)
    assert read.owned.partitions == {0, 1}  # opened (and restored) first
    await reader.process(batch(0, range(3)))
    assert reader.owned.processor(0).applied_offset == 2


async def test_a_partition_whose_read_partition_is_not_assigned_here_stops_the_worker(
    tmp_path, monkeypatch
):
    stops: list[str] = []
    monkeypatch.setattr(runner_module, "fatal", stops.append)
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0})
    await reader.open_assigned(1)
    await reader.process({**batch(0, range(2)), **batch(1, range(2))})
    assert reader.owned.processor(0).applied_offset == 1
    assert reader.owned.processor(1) is None and read.owned.partitions == {0}
    assert len(stops) == 1 and "same partition count" in stops[0]


async def test_a_read_partition_lost_meanwhile_holds_its_reader_back_until_the_rebalance(
    tmp_path, monkeypatch
):
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0, 1})
    read._lost.add(1)  # fenced by a newer owner in this generation
    await reader.open_assigned(1)
    await reader.process(batch(1, range(2)))
    assert reader.owned.processor(1) is None and reader._lost == {1}
    assert 1 not in reader_of(reader).wanted  # not read until the rebalance


async def test_a_partition_whose_read_partition_went_with_a_fenced_round_waits_too(
    tmp_path, monkeypatch
):
    stops: list[str] = []
    monkeypatch.setattr(runner_module, "fatal", stops.append)
    reader, read = _reader_and_read(tmp_path, monkeypatch, {0, 1})
    await reader.open_assigned(1)
    await reader.process({**batch(0, range(2)), **batch(1, range(2))})
    await settle()
    writer_of(read.owned).fail = Fenced("generation 1 refused")
    await read.process(batch(1, [0]))  # the read stage's round of partition 1 is fenced
    await settle()
    await read.commit_due()  # joined: partition 1 closed there
    assert read.owned.partitions == {0}

    await reader.process({**batch(0, [2]), **batch(1, [2])})

    assert stops == []  # never processed without what it reads
    assert reader.owned.partitions == {0} and reader._lost == {1}  # noqa: SLF001
    assert reader.owned.processor(0).applied_offset == 2
    assert 1 not in reader_of(reader).wanted


async def test_a_round_timer_that_fires_early_still_starts_the_next_round(make, monkeypatch) -> None:
    """uvloop's timers count whole milliseconds: the one set for the next round can fire just
    before the interval has passed, and the round must still follow."""
    runner = await make(commit_s=0.3)
    loop = asyncio.get_running_loop()
    call_later = loop.call_later
    monkeypatch.setattr(loop, "call_later", lambda delay, fn, *a: call_later(max(delay - 0.002, 0), fn, *a))
    await runner.process(batch(0, [0]))
    await settle()
    await runner.process(batch(0, [1]))
    started = time.monotonic()
    while committed_offsets(runner, 0) == [1] and time.monotonic() - started < 3:
        await asyncio.sleep(0.01)
    assert committed_offsets(runner, 0) == [1, 2]
