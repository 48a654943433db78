"""Apply a changelog in offset order, with no record skipped: the pure rules.

faust delivers a GlobalTable's changelog records to the table through a queue that it empties
whenever flow control resumes, which happens several times during every recovery (faust
0.15.3 ``tables/recovery.py``; ``FlowControlEvent.resume`` clears every managed queue). Records
still queued then are gone: faust already counted them as read and never reads them again, so
a replica misses an update for good (upstream: faust-streaming/faust#283 and
robinhood/faust#716, "partially filled GlobalTable").

``ChangelogSequencer`` notices the hole when the next record arrives (its offset is past the
one after the last applied) and holds everything from there on until the hole has been read
again directly from Kafka (``filled``). A compacted changelog has holes of its own (removed
records); reading them again finds nothing and costs one fetch. ``stalled`` covers the hole
with nothing after it: the changelog ends past the last applied offset and nothing arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol


class Record(Protocol):
    """What the sequencer needs of a changelog record (faust's ``Message`` has it)."""

    partition: int
    offset: int


@dataclass(frozen=True)
class Gap:
    """Offsets ``start`` up to ``until`` (inclusive) of ``partition`` must be read again."""

    partition: int
    start: int
    until: int


class ChangelogSequencer:
    """Per partition: the last applied offset, and the records held back behind a gap.

    ``applied_from(partition)`` gives the offset applied before this worker started reading
    (faust's persisted offset; None: nothing).
    """

    def __init__(self, applied_from: Callable[[int], int | None]) -> None:
        self._applied_from = applied_from
        self._applied: dict[int, int] = {}
        self._held: dict[int, list] = {}

    def applied(self, partition: int) -> int:
        """The last offset applied in order (-1: none)."""
        if partition not in self._applied:
            start = self._applied_from(partition)
            self._applied[partition] = -1 if start is None else start
        return self._applied[partition]

    def held(self, partition: int) -> list:
        """The records held back behind a gap of ``partition`` (empty: no gap)."""
        return list(self._held.get(partition, ()))

    def admit(self, records: Iterable[Record]) -> tuple[list, list[Gap]]:
        """The records to apply now (in order) and the gaps to read again.

        Records at or below the applied offset were applied already and are dropped.
        """
        ready: list = []
        gaps: list[Gap] = []
        for record in records:
            partition, offset = record.partition, record.offset
            held = self._held.get(partition)
            if held is not None:
                held.append(record)
                continue
            applied = self.applied(partition)
            if offset <= applied:
                continue
            if offset == applied + 1:
                ready.append(record)
                self._applied[partition] = offset
                continue
            self._held[partition] = [record]
            gaps.append(Gap(partition, applied + 1, offset - 1))
        return ready, gaps

    def passed(self, partition: int, offset: int) -> None:
        """Record ``offset`` as applied without applying it (the table wrote it itself);
        anything held for the partition is dropped."""
        self._held.pop(partition, None)
        self._applied[partition] = max(self.applied(partition), offset)

    def stalled(self, partition: int, end_offset: int) -> Gap | None:
        """The gap to read again when the changelog ends at ``end_offset`` (exclusive) and
        nothing past the applied offset has arrived for a while; None if there is none."""
        if partition in self._held:
            return None
        applied = self.applied(partition)
        if end_offset - 1 <= applied:
            return None
        self._held[partition] = []
        return Gap(partition, applied + 1, end_offset - 1)

    def until(self, partition: int) -> int | None:
        """The highest offset held back (what a fill must read up to), None if none."""
        held = self._held.get(partition)
        return max((r.offset for r in held), default=None) if held is not None else None

    def filled(self, partition: int, records: Sequence[Record]) -> list:
        """The records read again for a gap of ``partition``, merged with those held back:
        everything past the applied offset, once each, in offset order. Ends the fill."""
        held = self._held.pop(partition, [])
        by_offset = {r.offset: r for r in held}
        by_offset.update((r.offset, r) for r in records if r.partition == partition)
        applied = self.applied(partition)
        ready = [by_offset[o] for o in sorted(by_offset) if o > applied]
        if ready:
            self._applied[partition] = ready[-1].offset
        return ready
