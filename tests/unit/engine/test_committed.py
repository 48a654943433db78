"""``read_to_end``: every committed record of the partitions asked, from their start up to
the end fixed when the read began, and nothing past it; a missing topic is an error."""

from __future__ import annotations

from contextlib import aclosing
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from hypothesis import given
from hypothesis import strategies as st

from app.engine import committed as committed_module
from app.engine.committed import TopicNotFound, below_end, read_to_end, records_between

T = "topic"


class Log:
    """A read_committed consumer of a topic whose partitions hold ``offsets`` (committed
    records; the gaps are transaction markers), answering fetches of ``per_fetch`` records.
    Records appended after the read began are at ``late``."""

    def __init__(self, offsets: dict[int, list[int]], per_fetch: int = 2) -> None:
        self.offsets = offsets
        self.per_fetch = per_fetch
        self.positions: dict[TopicPartition, int] = {}
        self.options: dict = {}
        self.fetches = 0
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.offsets) if topic == T and self.offsets else None

    def assign(self, tps) -> None:  # noqa: ANN001
        self.positions = {tp: 0 for tp in tps}

    async def end_offsets(self, tps) -> dict:  # noqa: ANN001
        return {tp: (self.offsets[tp.partition] or [-1])[-1] + 1 for tp in tps}

    async def seek_to_beginning(self, *tps) -> None:  # noqa: ANN002
        for tp in tps:
            self.positions[tp] = 0

    def seek(self, tp, offset: int) -> None:  # noqa: ANN001
        self.positions[tp] = offset

    async def position(self, tp) -> int:  # noqa: ANN001
        return self.positions[tp]

    async def getmany(self, *tps, timeout_ms: int, max_records: int | None) -> dict:  # noqa: ANN002
        self.fetches += 1
        out = {}
        for tp in tps:
            pos = self.positions[tp]
            found = [o for o in self.offsets[tp.partition] if o >= pos][: self.per_fetch]
            if found:
                out[tp] = [SimpleNamespace(offset=o, partition=tp.partition) for o in found]
                self.positions[tp] = found[-1] + 1
            else:
                self.positions[tp] = max(pos, (self.offsets[tp.partition] or [-1])[-1] + 1)
        return out


def reading(monkeypatch, log: Log) -> Log:  # noqa: ANN001
    def reader(kwargs, **options):  # noqa: ANN001, ANN202
        log.options = options
        return log

    monkeypatch.setattr(committed_module, "committed_reader", reader)
    return log


async def offsets_read(*args, **kwargs) -> list[tuple[int, int]]:  # noqa: ANN002, ANN003
    batches = read_to_end({}, *args, **kwargs)
    return [(r.partition, r.offset) async for batch in batches for r in batch]


async def test_a_topic_is_read_whole_partition_by_partition(monkeypatch) -> None:
    log = reading(monkeypatch, Log({0: [0, 1, 2, 4], 1: [], 2: [1, 3]}))

    read = await offsets_read(T)

    assert sorted(read) == [(0, 0), (0, 1), (0, 2), (0, 4), (2, 1), (2, 3)]
    assert [o for p, o in read if p == 0] == [0, 1, 2, 4]  # in order within a partition
    assert log.stopped and log.options["auto_offset_reset"] == "earliest"


async def test_the_end_is_fixed_when_the_read_begins(monkeypatch) -> None:
    log = reading(monkeypatch, Log({0: [0, 1, 2]}, per_fetch=10))
    tp = TopicPartition(T, 0)
    batches = read_to_end({}, T)
    first = await batches.__anext__()
    log.offsets[0] += [3, 4]  # written after the read began: its end was 3

    rest = [r async for batch in batches for r in batch]

    assert [r.offset for r in first] == [0, 1, 2] and rest == [] and log.stopped
    assert await log.position(tp) == 3


async def test_starts_and_ends_bound_the_read(monkeypatch) -> None:
    reading(monkeypatch, Log({0: list(range(10)), 1: list(range(10))}, per_fetch=4))
    a, b = TopicPartition(T, 0), TopicPartition(T, 1)

    read = await offsets_read([a, b], starts={a: 3, b: -1}, ends={a: 6, b: 2})

    assert sorted(read) == [(0, 3), (0, 4), (0, 5), (1, 0), (1, 1)]


async def test_a_partition_starting_at_its_end_is_not_fetched(monkeypatch) -> None:
    log = reading(monkeypatch, Log({0: [0, 1]}))
    tp = TopicPartition(T, 0)

    assert await offsets_read([tp], starts={tp: 2}) == [] and log.fetches == 0


async def test_a_missing_topic_is_an_error_naming_it(monkeypatch) -> None:
    log = reading(monkeypatch, Log({}))
    log._client = SimpleNamespace(force_metadata_update=_nothing)  # noqa: SLF001

    with pytest.raises(TopicNotFound, match="topic other does not exist"):
        await offsets_read("other")
    assert log.stopped


async def _nothing() -> None:
    pass


async def test_a_read_stopped_early_stops_its_consumer(monkeypatch) -> None:
    log = reading(monkeypatch, Log({0: list(range(10))}))

    async with aclosing(read_to_end({}, T)) as batches:
        async for _ in batches:
            break

    assert log.stopped and log.fetches == 1


async def test_records_between_counts_records_not_markers(monkeypatch) -> None:
    # offsets 3 and 7 are commit markers: never delivered, never counted
    reading(monkeypatch, Log({0: [0, 1, 2, 4, 5, 6, 8], 1: [0, 1]}))
    a, b = TopicPartition(T, 0), TopicPartition(T, 1)

    assert await records_between({}, {a: 2}, {a: 8, b: 2}) == 6  # 2, 4, 5, 6 of a; 0, 1 of b
    assert await records_between({}, {a: 8, b: 2}, {a: 8, b: 2}) == 0


@given(
    offsets=st.lists(st.integers(0, 50), unique=True).map(sorted),
    end=st.integers(0, 60),
)
def test_below_end_keeps_exactly_the_records_before_the_end(offsets: list[int], end: int) -> None:
    records = [SimpleNamespace(offset=o) for o in offsets]

    kept = below_end(records, end)

    assert [r.offset for r in kept] == [o for o in offsets if o < end]
