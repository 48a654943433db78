"""A record that makes its processor raise: dead-lettered as ``processing_error`` with its
partial changes rolled back, the partition read again from its last seal and going on; or,
with ``processing_errors="fail"`` and for failures that are not the record's, the worker
stops (``app.engine.runner``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine import runner as runner_module
from app.engine.failures import StoreFailure, blames_record
from app.engine.runner import StageRunner
from app.metrics import Metrics
from tests.unit.engine.fakes import DEAD_LETTERS, GROUP, OUTPUT, SOURCE, Echo, owned_partitions, writer_of
from tests.unit.engine.test_runner import LONG, Consumer, Reader, batch, reader_of, settle


class Boom(Echo):
    """Echo that raises after its writes for a value starting with ``boom``, so that a
    rollback that missed something would show in the store or the outputs."""

    def process(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        super().process(offset, key, value, now_ms)
        if value is not None and value.startswith(b"boom"):
            raise ValueError(f"cannot take {value!r}")


class Exited(Exception):
    pass


@pytest.fixture
def make(tmp_path, monkeypatch):
    exits: list[str] = []

    def fatal(what: str) -> None:
        exits.append(what)
        raise Exited(what)

    monkeypatch.setattr(runner_module, "fatal", fatal)

    async def make_(factory=Boom, processing_errors: str = "continue", commit_s: float = LONG,  # noqa: ANN001, ANN202
                    path=None):  # noqa: ANN001
        owned = owned_partitions(path or tmp_path, monkeypatch, factory=factory)
        app = SimpleNamespace(consumer_generation_id=1, consumer=Consumer({0, 1}))
        runner = StageRunner(
            app, owned, Reader(), Metrics(), 100, commit_s,
            processing_errors=processing_errors, group_metadata=lambda: GROUP, round_gap_s=0.0,
        )
        runner.exits = exits
        runner.on_assigned(1)
        await runner.open_assigned(1)
        return runner

    return make_


def records(partition: int, values: dict[int, bytes]) -> dict[int, list]:
    """A fetch of ``partition``: offset -> value (``v<offset>`` when not given)."""
    out = batch(partition, sorted(values))
    for rec in out[partition]:
        rec.value = values[rec.offset] or b"v%d" % rec.offset
    return out


def fetch(partition: int, offsets: range, boom: set[int]) -> dict[int, list]:
    return records(partition, {o: (b"boom%d" % o if o in boom else b"") for o in offsets})


async def committed(runner: StageRunner, partition: int = 0) -> SimpleNamespace:
    """Everything committed for ``partition`` so far: output keys, dead letters, offsets."""
    await runner.commit_all()
    await settle()
    outputs, dead, offsets = [], [], []
    tp = TopicPartition(SOURCE, partition)
    for commit in writer_of(runner.owned).commits:
        outputs += [key for key, _, _ in commit.records.get((OUTPUT, partition), [])]
        dead += commit.records.get((DEAD_LETTERS, partition), [])
        offsets += [commit.source_offsets[tp]] if tp in commit.source_offsets else []
    return SimpleNamespace(outputs=outputs, dead=dead, offsets=offsets)


async def test_a_failing_record_is_dead_lettered_and_its_partial_changes_rolled_back(make) -> None:
    runner = await make()
    await runner.process(fetch(0, range(5), boom={2}))

    processor = runner.owned.processor(0)
    assert processor.applied_offset == -1  # back to the last seal: nothing was sealed yet
    assert processor.store.get(b"k2") is None and processor.store.get(b"k0") is None
    assert len(processor.outbox) == 0
    assert reader_of(runner).seeks == [(0, 0)]

    await runner.process(fetch(0, range(5), boom={2}))  # the re-read
    done = await committed(runner)

    assert done.outputs == [b"k0", b"k1", b"k3", b"k4"]
    [(key, value, headers)] = done.dead
    assert (key, value) == (b"k2", b"boom2")
    headers = dict(headers)
    assert headers["dlq.reason"] == b"processing_error"
    assert headers["dlq.detail"] == b"ValueError: cannot take b'boom2'"
    assert (headers["dlq.origin.topic"], headers["dlq.origin.offset"]) == (b"in", b"2")
    assert done.offsets == [5]
    store = runner.owned.processor(0).store.committed()
    assert store.get(b"k2") is None and store.get(b"k4") == b"v4"
    assert runner.exits == []


async def test_it_is_counted_as_a_processing_error_and_a_rejection(make) -> None:
    runner = await make()
    await runner.process(fetch(0, range(3), boom={1}))
    await runner.process(fetch(0, range(3), boom={1}))
    await committed(runner)
    metrics = runner._metrics  # noqa: SLF001
    assert metrics.processing_errors.labels("echo", "ValueError")._value.get() == 1  # noqa: SLF001
    assert metrics.events_rejected.labels("in", "processing_error")._value.get() == 1  # noqa: SLF001


async def test_records_fetched_before_the_rewind_are_dropped_until_the_re_read(make) -> None:
    runner = await make()
    await runner.process(fetch(0, range(3), boom={1}))
    await runner.process(fetch(0, range(3, 6), boom=set()))  # fetched before the seek
    assert runner.owned.processor(0).applied_offset == -1

    await runner.process(fetch(0, range(6), boom={1}))
    assert (await committed(runner)).outputs == [b"k0", b"k2", b"k3", b"k4", b"k5"]


async def test_work_sealed_for_a_commit_in_flight_survives_the_rewind(make) -> None:
    runner = await make(commit_s=0.0)
    await runner.process(fetch(0, range(1), boom=set()))  # opens and commits offset 0
    await settle()
    gate = writer_of(runner.owned).gate = asyncio.Event()
    await runner.process(fetch(0, range(1, 3), boom=set()))  # sealed, its commit held
    await runner.process(fetch(0, range(3, 6), boom={4}))  # fails: back to offset 2

    assert runner.owned.processor(0).applied_offset == 2
    assert reader_of(runner).seeks[-1] == (0, 3)
    gate.set()
    await settle()
    await runner.process(fetch(0, range(3, 6), boom={4}))

    done = await committed(runner)
    assert done.outputs == [b"k0", b"k1", b"k2", b"k3", b"k5"]
    assert [key for key, _, _ in done.dead] == [b"k4"]


async def test_a_record_that_fails_only_once_is_still_dead_lettered(make) -> None:
    """The decision is made when the record fails: the re-read does not try it again (its
    failure may depend on state, and a second outcome would make the stream undecided)."""
    failed: set[int] = set()

    class Flaky(Echo):
        def process(self, offset, key, value, now_ms) -> None:  # noqa: ANN001
            super().process(offset, key, value, now_ms)
            if offset == 1 and offset not in failed:
                failed.add(offset)
                raise KeyError("once")

    runner = await make(factory=Flaky)
    await runner.process(fetch(0, range(3), boom=set()))
    await runner.process(fetch(0, range(3), boom=set()))
    done = await committed(runner)
    assert done.outputs == [b"k0", b"k2"] and [k for k, _, _ in done.dead] == [b"k1"]


async def test_fail_mode_stops_the_worker_without_dead_lettering(make) -> None:
    runner = await make(processing_errors="fail")
    with pytest.raises(Exited):
        await runner.process(fetch(0, range(3), boom={1}))
    assert runner.exits == ["echo: processing a batch failed"]
    assert len(runner.owned.processor(0).outbox) == 1 + 1  # k0, k1: nothing dead-lettered


async def test_a_failure_that_is_not_the_records_stops_the_worker(make) -> None:
    class BrokenStore(Echo):
        def process(self, offset, key, value, now_ms) -> None:  # noqa: ANN001
            raise StoreFailure("reading failed: IO error")

    runner = await make(factory=BrokenStore)
    with pytest.raises(Exited):
        await runner.process(fetch(0, range(2), boom=set()))
    assert runner.owned.processor(0).applied_offset == -1


def test_which_failures_blame_the_record() -> None:
    assert blames_record(ValueError()) and blames_record(RecursionError())
    assert blames_record(KeyError()) and blames_record(ZeroDivisionError())
    assert not blames_record(StoreFailure()) and not blames_record(MemoryError())
    assert not blames_record(asyncio.CancelledError()) and not blames_record(KeyboardInterrupt())


async def test_a_failed_record_rolled_back_by_a_later_failure_is_not_processed_again(make) -> None:
    runner = await make()
    await runner.process(fetch(0, range(6), boom={1, 4}))  # 1 fails: back to 0
    await runner.process(fetch(0, range(6), boom={1, 4}))  # 1 dead-lettered, 4 fails: back to 0
    await runner.process(fetch(0, range(6), boom={1, 4}))  # both dead-lettered
    done = await committed(runner)
    assert done.outputs == [b"k0", b"k2", b"k3", b"k5"]
    assert [key for key, _, _ in done.dead] == [b"k1", b"k4"]
    assert runner._metrics.processing_errors.labels("echo", "ValueError")._value.get() == 2  # noqa: SLF001


async def test_a_closed_partition_forgets_its_failed_records(make) -> None:
    runner = await make()
    await runner.process(fetch(1, range(2), boom={1}))
    await runner.on_revoked({1})
    assert runner._poison == {}  # noqa: SLF001  (its next owner decides for itself)


def test_processing_errors_takes_continue_or_fail_only(tmp_path, monkeypatch) -> None:
    owned = owned_partitions(tmp_path, monkeypatch)
    app = SimpleNamespace(consumer_generation_id=1, consumer=Consumer({0}))
    with pytest.raises(ValueError, match="continue or fail"):
        StageRunner(app, owned, Reader(), Metrics(), 100, LONG, processing_errors="skip")


_examples = iter(range(1_000_000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    total=st.integers(1, 40),
    boom=st.sets(st.integers(0, 39), max_size=8),
    sizes=st.lists(st.integers(1, 7), min_size=1, max_size=20),
    commit_every=st.integers(1, 4),
)
async def test_any_failures_in_any_fetches_give_each_record_exactly_one_outcome(
    make, tmp_path, total, boom, sizes, commit_every
) -> None:
    """However the input is cut into fetches and wherever commits fall, every record ends up
    exactly once: in the output when it does not fail, in the dead letters when it does."""
    boom = {o for o in boom if o < total}
    runner = await make(path=tmp_path / str(next(_examples)))
    reader = reader_of(runner)
    position, step = 0, 0
    while runner.owned.processor(0).applied_offset < total - 1:
        size = sizes[step % len(sizes)]
        step += 1
        seeks = len(reader.seeks)
        await runner.process(fetch(0, range(position, min(position + size, total)), boom))
        position = reader.seeks[-1][1] if len(reader.seeks) > seeks else position + size
        if step % commit_every == 0:
            await runner.commit_all()
        assert step < 20 * (total + 10), "no progress"
    done = await committed(runner)
    assert done.outputs == [b"k%d" % o for o in range(total) if o not in boom]
    assert [key for key, _, _ in done.dead] == [b"k%d" % o for o in sorted(boom)]
    errors = runner._metrics.processing_errors.labels("echo", "ValueError")._value.get()  # noqa: SLF001
    assert errors == len(boom)  # each record failed once: its re-reads were dead letters


async def test_a_failing_record_too_large_for_the_dead_letter_topic_is_cut_to_fit(make) -> None:
    runner = await make()
    big = {0: b"boom" + b"x" * (3 << 20)}
    await runner.process(records(0, big))
    await runner.process(records(0, big))
    [(key, value, headers)] = (await committed(runner)).dead
    headers = dict(headers)
    assert headers["dlq.truncated"] == b"true" and headers["dlq.original.bytes"] == b"%d" % len(big[0])
    assert big[0].startswith(value) and len(value) < runner.owned._max_request_size  # noqa: SLF001
