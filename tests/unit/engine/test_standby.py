"""The standby keeper (``app.engine.standby``) over a scripted changelog: what it applies, where
it resumes, and that a copy it is told to drop is closed (its RocksDB free for the stage)
before ``update`` returns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from hypothesis import given, strategies as st

from app.engine.standby import StandbyKeeper, StandbyStage, copy_lag, wanted_standbys
from app.engine.store import PartitionStore, rocksdb_options

SMALL = 1 << 20


class Changelogs:
    """A read_committed consumer over in-memory changelog partitions: each has records
    (offset, key, value) and a last stable offset; records at or past it are not returned."""

    def __init__(self) -> None:
        self.records: dict[TopicPartition, list[tuple[int, bytes, bytes | None]]] = {}
        self.stable: dict[TopicPartition, int] = {}
        self.fail_fetches = 0  # the next fetches raise (the brokers went away)
        self.made = 0
        self.seeks: list[tuple[TopicPartition, int]] = []

    def write(self, tp: TopicPartition, *items: tuple[bytes, bytes | None], commit: bool = True) -> None:
        log = self.records.setdefault(tp, [])
        for key, value in items:
            log.append((len(log), key, value))
        if commit:
            self.stable[tp] = len(log)

    def consumer(self) -> _Consumer:
        self.made += 1
        return _Consumer(self)


class _Consumer:
    def __init__(self, logs: Changelogs) -> None:
        self._logs = logs
        self._positions: dict[TopicPartition, int] = {}
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def assign(self, partitions: list[TopicPartition]) -> None:
        self._positions = dict.fromkeys(partitions, 0)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._logs.seeks.append((tp, offset))
        self._positions[tp] = offset

    async def position(self, tp: TopicPartition) -> int:
        return self._positions[tp]

    def highwater(self, tp: TopicPartition) -> int | None:
        return len(self._logs.records.get(tp, ()))

    def last_stable_offset(self, tp: TopicPartition) -> int | None:
        return self._logs.stable.get(tp, 0)

    async def getmany(self, *tps: TopicPartition, timeout_ms: int, max_records: int) -> dict:
        if self._logs.fail_fetches:
            self._logs.fail_fetches -= 1
            raise ConnectionError("broker went away")
        out = {}
        for tp in tps:
            position, stable = self._positions[tp], self._logs.stable.get(tp, 0)
            batch = [
                SimpleNamespace(offset=o, key=k, value=v)
                for o, k, v in self._logs.records.get(tp, ())[position:stable][:max_records]
            ]
            if batch:
                out[tp] = batch
                self._positions[tp] = batch[-1].offset + 1
        if not out:
            await asyncio.sleep(0.005)
        return out


STAGES = (("views", "views-changelog"), ("properties", "properties-changelog"))


def _path(root: Path, name: str) -> Callable[[int], Path]:
    return lambda partition: root / name / f"{partition:03d}"


@pytest.fixture
def logs() -> Changelogs:
    return Changelogs()


@pytest.fixture
async def keeper(tmp_path: Path, logs: Changelogs):  # noqa: ANN201
    keeper = StandbyKeeper(
        [StandbyStage(name, changelog, _path(tmp_path, name)) for name, changelog in STAGES],
        rocksdb_options(SMALL, SMALL),
        {},
        consumer_factory=logs.consumer,
    )
    yield keeper
    await keeper.stop()


async def _until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _stored(tmp_path: Path, name: str, partition: int) -> tuple[dict[bytes, bytes], int | None]:
    store = PartitionStore(_path(tmp_path, name)(partition), rocksdb_options(SMALL, SMALL))
    try:
        items = dict(store.committed().scan(b"\x01", b"\xff"))
        return items, store.checkpoint()
    finally:
        store.close()


async def test_copies_apply_committed_changelog_records_only(keeper, logs, tmp_path) -> None:
    views1 = TopicPartition("views-changelog", 1)
    logs.write(views1, (b"a", b"1"), (b"b", b"2"), (b"a", None))
    logs.write(views1, (b"c", b"open"), commit=False)  # a transaction still open
    await keeper.update({("views", 1), ("properties", 1)})
    await _until(lambda: keeper.applied[("views", 1)] == 3)
    await _until(lambda: keeper.lag.get(("views", 1)) == 0)
    assert keeper.held == {("views", 1), ("properties", 1)}
    assert keeper.lag[("properties", 1)] == 0

    logs.write(TopicPartition("properties-changelog", 1), (b"p", b"x"))
    logs.stable[views1] = 4  # the transaction commits
    await _until(lambda: keeper.applied[("views", 1)] == 4)
    await _until(lambda: keeper.applied[("properties", 1)] == 1)
    await keeper.update(set())  # dropped: closed, so it can be read here
    assert _stored(tmp_path, "views", 1) == ({b"b": b"2", b"c": b"open"}, 3)
    assert _stored(tmp_path, "properties", 1) == ({b"p": b"x"}, 0)


async def test_a_copy_resumes_after_its_checkpoint(keeper, logs, tmp_path) -> None:
    tp = TopicPartition("views-changelog", 0)
    logs.write(tp, (b"a", b"1"), (b"b", b"2"))
    await keeper.update({("views", 0)})
    await _until(lambda: keeper.applied[("views", 0)] == 2)
    await keeper.update(set())
    logs.write(tp, (b"c", b"3"))
    await keeper.update({("views", 0)})
    await _until(lambda: keeper.applied[("views", 0)] == 1)  # the tail only
    assert logs.seeks[-1] == (tp, 2)
    await keeper.update(set())
    assert _stored(tmp_path, "views", 0) == ({b"a": b"1", b"b": b"2", b"c": b"3"}, 2)


async def test_a_copy_that_becomes_active_is_closed_before_update_returns(keeper, logs, tmp_path) -> None:
    """Its stage then opens the same RocksDB (a second open of it in one process fails while
    the copy holds it) and restores from the copy's checkpoint."""
    tp = TopicPartition("views-changelog", 2)
    logs.write(tp, *((b"k%d" % i, b"v") for i in range(10)))
    await keeper.update({("views", 2), ("views", 3)})
    await _until(lambda: keeper.applied[("views", 2)] == 10)
    with pytest.raises(Exception):  # held by the copy
        PartitionStore(_path(tmp_path, "views")(2), rocksdb_options(SMALL, SMALL))
    await keeper.update({("views", 3)})
    assert ("views", 2) not in keeper.lag and keeper.held == {("views", 3)}
    active = PartitionStore(_path(tmp_path, "views")(2), rocksdb_options(SMALL, SMALL))
    try:
        assert active.checkpoint() == 9
    finally:
        active.close()


async def test_a_failed_fetch_restarts_the_consumer_from_the_checkpoints(
    keeper, logs, tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr("app.engine.standby._RETRY_S", 0.01)
    tp = TopicPartition("views-changelog", 0)
    logs.write(tp, (b"a", b"1"))
    await keeper.update({("views", 0)})
    await _until(lambda: keeper.applied[("views", 0)] == 1)
    logs.fail_fetches = 2
    logs.write(tp, (b"b", b"2"))
    await _until(lambda: keeper.applied[("views", 0)] == 2)
    assert logs.made == 3 and logs.seeks[-1] == (tp, 1)  # the second restart, after offset 0
    await keeper.update(set())
    assert _stored(tmp_path, "views", 0) == ({b"a": b"1", b"b": b"2"}, 1)


async def test_copies_of_unknown_stages_are_ignored(keeper, logs) -> None:
    await keeper.update({("nope", 0)})
    assert keeper.held == set() and keeper.stores() == []


def test_wanted_standbys_example() -> None:
    stages = [("views", "property.views"), ("properties", "property.events")]
    standbys = [("property.views", 1), ("property.events", 1), ("other", 2), ("property.views", 3)]
    assert wanted_standbys(stages, standbys, {("views", 3)}) == {("views", 1), ("properties", 1)}


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xyz")), unique_by=lambda s: s[0]),
    st.sets(st.tuples(st.sampled_from("xyzw"), st.integers(0, 5))),
    st.sets(st.tuples(st.sampled_from("abc"), st.integers(0, 5))),
)
def test_wanted_standbys_are_the_stage_partitions_of_standby_topics_not_active(
    stages, standbys, active
) -> None:
    wanted = wanted_standbys(stages, standbys, active)
    source = dict(stages)
    assert not wanted & active
    for name, partition in wanted:
        assert (source[name], partition) in standbys
    for name, topic in stages:
        for t, partition in standbys:
            if t == topic and (name, partition) not in active:
                assert (name, partition) in wanted


@given(st.integers(0, 10**9), st.none() | st.integers(0, 10**9), st.none() | st.integers(0, 10**9))
def test_copy_lag(position, highwater, last_stable) -> None:
    lag = copy_lag(position, highwater, last_stable)
    if highwater is None and last_stable is None:
        assert lag is None
    else:
        end = last_stable if last_stable is not None else highwater
        assert lag == max(end - position, 0) and lag >= 0


async def test_copies_wait_until_the_active_partitions_are_open(tmp_path, logs) -> None:
    """A takeover's restores first: no copy is read while the worker's own partitions open."""
    opened = False
    keeper = StandbyKeeper(
        [StandbyStage("views", "views-changelog", _path(tmp_path, "views"))],
        rocksdb_options(SMALL, SMALL),
        {},
        consumer_factory=logs.consumer,
        active_opened=lambda: opened,
    )
    logs.write(TopicPartition("views-changelog", 0), (b"a", b"1"))
    try:
        await keeper.update({("views", 0)})
        await asyncio.sleep(0.5)
        assert logs.made == 0 and keeper.applied[("views", 0)] == 0
        opened = True
        await _until(lambda: keeper.applied[("views", 0)] == 1)
    finally:
        await keeper.stop()
