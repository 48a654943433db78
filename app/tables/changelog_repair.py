"""Read a changelog's gaps again, straight from Kafka, for a ``SequencedTable``.

One ``DirectReader`` per table, started on the first gap: it seeks to the gap, reads until it has passed every record the table holds back, and hands the records
to the table, which applies them and the held ones in offset order (``ChangelogSequencer``).
``audit`` finds the gap with nothing after it: the changelog has grown past the applied
offset, and nothing new was applied since the previous audit.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from aiokafka import ConsumerRecord, TopicPartition
from faust.types import TP, Message

from app.clients import DirectReader
from app.tables.changelog_gaps import ChangelogSequencer, Gap

log = logging.getLogger(__name__)


class SequencedTable(Protocol):
    sequencer: ChangelogSequencer
    writing: set[int]  # partitions the table writes itself: nothing to read back

    def apply_in_order(self, messages: list) -> None: ...


def to_message(record: ConsumerRecord) -> Message:
    """An aiokafka record as the faust ``Message`` a changelog event carries."""
    return Message(
        record.topic,
        record.partition,
        record.offset,
        record.timestamp / 1000.0,
        record.timestamp_type,
        record.headers,
        record.key,
        record.value,
        record.checksum,
        tp=TP(record.topic, record.partition),
    )


class ChangelogRepair:
    def __init__(
        self,
        table: SequencedTable,
        topic: str,
        client_kwargs: dict,
        on_refetched=None,  # noqa: ANN001 - Callable[[int], None]: records faust had lost
    ) -> None:
        self.table = table
        self.topic = topic
        self._on_refetched = on_refetched
        self._reader = DirectReader(client_kwargs)
        self._lock = asyncio.Lock()  # one fill (one seek of the reader) at a time
        self._fills: dict[int, asyncio.Task] = {}
        self._last_audit: dict[int, int] = {}
        self.records_refetched = 0

    def request(self, gap: Gap) -> None:
        """Read ``gap`` again in the background (the table holds the records after it)."""
        if gap.partition not in self._fills:
            self._fills[gap.partition] = asyncio.ensure_future(self._fill(gap))

    async def audit(self) -> None:
        """Fill the gap at the end of a partition that has stopped advancing."""
        sequencer = self.table.sequencer
        for partition, end in (await self._reader.end_offsets(self.topic)).items():
            applied = sequencer.applied(partition)
            stuck = self._last_audit.get(partition) == applied
            self._last_audit[partition] = applied
            if stuck and partition not in self._fills and partition not in self.table.writing:
                gap = sequencer.stalled(partition, end)
                if gap is not None:
                    log.warning(
                        "%s[%d]: applied up to %d, the changelog ends at %d and nothing "
                        "arrived since the last check: reading the rest directly",
                        self.topic, partition, applied, end,
                    )
                    self.request(gap)

    async def stop(self) -> None:
        for task in self._fills.values():
            task.cancel()
        await self._reader.stop()

    async def _fill(self, gap: Gap) -> None:
        try:
            async with self._lock:
                records = await self._read(gap)
                # No await from the last look at the held records to here: faust cannot
                # hand the table a record in between.
                self._apply(gap, records)
        finally:
            self._fills.pop(gap.partition, None)

    def _apply(self, gap: Gap, records: list[Message]) -> None:
        sequencer = self.table.sequencer
        held = {m.offset for m in sequencer.held(gap.partition)}
        last = max(held, default=gap.until)
        ready = sequencer.filled(gap.partition, records)
        # Read directly and not delivered by faust (past ``last``: read ahead, faust's next).
        refetched = sum(1 for m in ready if m.offset not in held and m.offset <= last)
        self.table.apply_in_order(ready)
        self.records_refetched += refetched
        if refetched:
            log.warning(
                "%s[%d]: %d records at offsets %d-%d were never delivered by faust; read "
                "them directly and applied them in order",
                self.topic, gap.partition, refetched, gap.start, gap.until,
            )
            if self._on_refetched is not None:
                self._on_refetched(refetched)

    async def _read(self, gap: Gap) -> list[Message]:
        """Every record from ``gap.start`` until past the gap and past every held record."""
        sequencer = self.table.sequencer

        def until() -> int:
            held_until = sequencer.until(gap.partition)
            return gap.until if held_until is None else max(gap.until, held_until)

        tp = TopicPartition(self.topic, gap.partition)
        return [to_message(r) for r in await self._reader.read(tp, gap.start, until)]
