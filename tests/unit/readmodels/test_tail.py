"""Read models tailed by every worker: a record they cannot read is skipped, logged with
``topic[partition]@offset`` and counted; the records after it are still applied. The tail
reads every partition from its start (or its last ``start_back`` records), says when it has
caught up with the end offsets seen at start, and reconnects after broker trouble."""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaConnectionError

from app.readmodels import tail as tail_module

from app.readmodels.insights import InsightsMemory
from app.readmodels.partials import partials_tail
from app.readmodels.tail import TopicTail
from app.readmodels.partials import VIEWS, PartialsView, SegmentWeek, partial_key, views_partial

W47 = 1_794_787_200_000  # Monday 2026-11-16
PARTIALS = "property-analytics-segment-partials"
INSIGHTS = "analytics.insights"


def rec(topic: str, offset: int, key: bytes | None, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(topic, 2, offset, 0, 0, key, value, None, 0, 0, [])


def test_partials_tail_skips_what_it_cannot_read_and_goes_on(caplog):
    view = PartialsView()
    skipped = []
    tail = partials_tail(view, PARTIALS, {}, on_skipped=lambda: skipped.append(1))
    good = partial_key(VIEWS, 0, W47, "s\x1fx")
    records = [
        rec(PARTIALS, 10, b"views\x1f0\x1f1794787200000\x1finvestor", views_partial(1, [])),
        rec(PARTIALS, 11, None, views_partial(1, [])),
        rec(PARTIALS, 12, good, b"{not json"),
        rec(PARTIALS, 13, good, views_partial(3, [["p", 3]])),
    ]

    with caplog.at_level(logging.WARNING, logger="app.readmodels.tail"):
        taken = [tail.take(r) for r in records]

    assert taken == [False, False, False, True]
    assert tail.skipped == 3 and len(skipped) == 3
    assert view.segment_week("s\x1fx", W47) == SegmentWeek(3, 0, [["p", 3]])
    assert view.segments(W47) == ["s\x1fx"]
    logged = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in logged] == [
        f"skipped {PARTIALS}[2]@10", f"skipped {PARTIALS}[2]@11", f"skipped {PARTIALS}[2]@12"
    ]


@pytest.mark.parametrize("value", [b"\xff", b"[1, 2]", b'"text"', b"{}", b'{"insightId": [1]}'])
def test_insights_tail_skips_values_that_are_not_insights(value):
    memory = InsightsMemory(10)
    tail = TopicTail(INSIGHTS, {}, memory.apply)
    insight = {"insightId": "i-1", "type": "property_hourly_spike",
               "subject": {"propertyId": "p"}, "windowStart": "2026-11-20T14:00:00Z",
               "windowEnd": "2026-11-20T15:00:00Z", "metrics": {"views": 20},
               "detectedAt": "2026-11-20T14:30:00Z"}

    assert tail.take(rec(INSIGHTS, 0, None, value)) is False
    assert tail.take(rec(INSIGHTS, 1, None, orjson.dumps(insight))) is True

    assert tail.skipped == 1
    assert memory.latest(10) == [insight]


# -- the tail's reading loop, against a stand-in consumer ------------------------------------


class Consumer:
    """The part of AIOKafkaConsumer a tail uses, over ``log`` (partition -> records from
    ``starts[partition]`` on). ``fail_once`` raises on the first fetch of the first consumer."""

    made: list[Consumer] = []

    def __init__(self, log: dict[int, list[ConsumerRecord]], starts: dict[int, int], fail_once: bool) -> None:
        self.log = log
        self.starts = starts
        self.fail = fail_once and not Consumer.made
        self.positions: dict[int, int] = {}
        self.fetch_size = 2
        self.stopped = False
        Consumer.made.append(self)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(self.log)

    def assign(self, tps) -> None:  # noqa: ANN001
        self.tps = list(tps)

    async def end_offsets(self, tps):  # noqa: ANN001, ANN201
        return {tp: self.starts[tp.partition] + len(self.log[tp.partition]) for tp in tps}

    async def beginning_offsets(self, tps):  # noqa: ANN001, ANN201
        return {tp: self.starts[tp.partition] for tp in tps}

    def seek(self, tp, offset: int) -> None:  # noqa: ANN001
        self.positions[tp.partition] = offset

    async def position(self, tp) -> int:  # noqa: ANN001
        return self.positions[tp.partition]

    async def getmany(self, timeout_ms: int = 0):  # noqa: ANN201
        if self.fail:
            self.fail = False
            raise KafkaConnectionError("broker went away")
        out = {}
        for tp in self.tps:
            p = tp.partition
            first = self.positions[p] - self.starts[p]
            records = self.log[p][first : first + self.fetch_size]
            if records:
                out[tp] = records
                self.positions[p] += len(records)
        if not out:
            await asyncio.sleep(0.01)
        return out


@pytest.fixture
def tail_over(monkeypatch):
    """tail_over(log, starts, **tail options) -> (the tail, a list of (key, value) applied)."""
    Consumer.made = []
    monkeypatch.setattr(tail_module, "RECONNECT_S", 0.01)

    def make(log, starts=None, fail_once=False, apply=None, **options):  # noqa: ANN001, ANN202
        starts = starts or {p: 0 for p in log}
        monkeypatch.setattr(
            tail_module, "committed_reader", lambda kwargs: Consumer(log, starts, fail_once)
        )
        applied: list[tuple[bytes | None, bytes | None]] = []

        def take(key: bytes | None, value: bytes | None) -> None:
            if apply is not None:
                apply(key, value)
            applied.append((key, value))

        return TopicTail("t", {}, take, **options), applied

    return make


def records_of(partition: int, start: int, values: list[bytes]) -> list[ConsumerRecord]:
    return [
        ConsumerRecord("t", partition, start + i, 0, 0, b"k", v, None, 1, len(v), [])
        for i, v in enumerate(values)
    ]


async def run_until_caught_up(tail: TopicTail) -> asyncio.Task:
    task = asyncio.ensure_future(tail.run())
    await asyncio.wait_for(tail.caught_up.wait(), 5)
    return task


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert Consumer.made[-1].stopped


async def test_a_tail_reads_every_partition_from_its_start_and_then_is_caught_up(tail_over) -> None:
    log = {0: records_of(0, 10, [b"a", b"b", b"c"]), 1: records_of(1, 0, [b"x"])}
    tail, applied = tail_over(log, starts={0: 10, 1: 0})
    task = await run_until_caught_up(tail)

    assert sorted(v for _, v in applied) == [b"a", b"b", b"c", b"x"]
    await stop(task)


async def test_caught_up_is_set_only_once_every_record_up_to_the_end_is_applied(tail_over) -> None:
    seen: list[bool] = []  # caught_up as each record was applied
    log = {0: records_of(0, 0, [b"%d" % i for i in range(7)]), 1: records_of(1, 0, [b"x"])}
    tail, applied = tail_over(log, apply=lambda k, v: seen.append(tail.caught_up.is_set()))
    task = await run_until_caught_up(tail)  # two records a fetch: four fetches

    assert len(applied) == 8 and seen == [False] * 8
    await stop(task)


async def test_start_back_reads_only_the_last_records_of_each_partition(tail_over) -> None:
    log = {0: records_of(0, 100, [b"%d" % i for i in range(5)]), 1: records_of(1, 0, [b"only"])}
    tail, applied = tail_over(log, starts={0: 100, 1: 0}, start_back=2)
    task = await run_until_caught_up(tail)

    # partition 0: its last two; partition 1 holds fewer than two: all of it, from its start
    assert sorted(v for _, v in applied) == [b"3", b"4", b"only"]
    await stop(task)


async def test_a_record_the_read_model_refuses_is_skipped_and_the_rest_applied(tail_over) -> None:
    def refuse_bad(key: bytes | None, value: bytes | None) -> None:
        if value == b"bad":
            raise ValueError("not a record of ours")

    log = {0: records_of(0, 0, [b"a", b"bad", b"c"])}
    tail, applied = tail_over(log, apply=refuse_bad)
    task = await run_until_caught_up(tail)

    assert [v for _, v in applied] == [b"a", b"c"] and tail.skipped == 1
    await stop(task)


async def test_broker_trouble_reconnects_and_reads_from_the_start_again(tail_over) -> None:
    log = {0: records_of(0, 0, [b"a", b"b"])}
    tail, applied = tail_over(log, fail_once=True)
    task = await run_until_caught_up(tail)

    assert len(Consumer.made) == 2 and Consumer.made[0].stopped
    assert [v for _, v in applied] == [b"a", b"b"]
    await stop(task)
