"""``ChangelogRepair`` against the real broker: the records faust never delivered to the
profiles GlobalTable are read directly and applied in order, with those held behind them;
a tail that stops short of the changelog's end is read too."""

from __future__ import annotations

import asyncio

import pytest

from app.tables.changelog_gaps import ChangelogSequencer
from app.tables.changelog_repair import ChangelogRepair
from support.topics import append, new_topic

pytestmark = pytest.mark.integration

RECORDS = 12


class Table:
    """A SequencedTable that keeps what it was given to apply."""

    def __init__(self) -> None:
        self.sequencer = ChangelogSequencer(lambda partition: None)
        self.writing: set[int] = set()
        self.applied: list = []

    def apply_in_order(self, messages: list) -> None:
        self.applied.extend(messages)


async def changelog(bootstrap: str) -> tuple[str, list]:
    """A fresh one-partition topic with RECORDS records; returns it and them as faust Messages."""
    topic = await new_topic(bootstrap, "changelog-repair")
    records = [(f"user-{i % 4}".encode(), f"profile {i}".encode()) for i in range(RECORDS)]
    return topic, await append(bootstrap, topic, records)


async def until_applied(table: Table, offset: int, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not table.applied or table.applied[-1].offset < offset:
        assert asyncio.get_running_loop().time() < deadline, f"not applied up to {offset}"
        await asyncio.sleep(0.05)


async def test_a_gap_is_read_again_and_applied_in_order_with_the_held_records(kafka_bootstrap):
    topic, records = await changelog(kafka_bootstrap)
    table = Table()
    refetched: list[int] = []
    repair = ChangelogRepair(table, topic, {"bootstrap_servers": kafka_bootstrap}, refetched.append)
    try:
        # faust delivers 0-3, loses 4-7, delivers 8-9: 8 and 9 wait for the gap.
        ready, gaps = table.sequencer.admit(records[:4] + records[8:10])
        table.apply_in_order(ready)
        assert [g.start for g in gaps] == [4] and [g.until for g in gaps] == [7]
        repair.request(gaps[0])
        await until_applied(table, 9)

        applied = [m.offset for m in table.applied]
        assert applied == sorted(set(applied)), "applied out of order or twice"
        assert applied[:10] == list(range(10))
        assert [m.value for m in table.applied[:10]] == [r.value for r in records[:10]]
        assert refetched == [4] and repair.records_refetched == 4

        # faust delivers the rest late: already applied (the repair read ahead) or new.
        ready, gaps = table.sequencer.admit(records[8:])
        table.apply_in_order(ready)
        assert [m.offset for m in table.applied] == list(range(RECORDS)) and gaps == []
    finally:
        await repair.stop()


async def test_a_tail_that_stops_short_of_the_end_is_read_by_the_audit(kafka_bootstrap):
    topic, records = await changelog(kafka_bootstrap)
    table = Table()
    repair = ChangelogRepair(table, topic, {"bootstrap_servers": kafka_bootstrap})
    try:
        ready, _ = table.sequencer.admit(records[:9])  # the last 3 never arrive
        table.apply_in_order(ready)
        await repair.audit()  # first look: nothing to compare with yet
        assert [m.offset for m in table.applied] == list(range(9))
        await repair.audit()  # no progress since, and the changelog ends at 12
        await until_applied(table, RECORDS - 1)
        assert [m.offset for m in table.applied] == list(range(RECORDS))
        assert repair.records_refetched == 3
        await repair.audit()  # caught up: nothing more to read
        assert not repair._fills and len(table.applied) == RECORDS  # noqa: SLF001
    finally:
        await repair.stop()
