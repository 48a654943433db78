"""The base of every stage's partition processor: what the engine needs of one, in one place.

A stage implements its domain step only (``step``: one new record, with its state and
outputs) and, when it has any, its bookkeeping before a commit (``commit_step``, ``positions``)
and its periodic work (``schedule``: what it publishes, say, the engine never knows). The base
keeps the rest, the same for every stage: the applied offset (a record at or below it is a
replay and is turned away before ``step``), the outcome tallies, the dead letters
(``dead_letter``: a rejection of the stage's own rules, or a record that made ``step`` raise,
dead-lettered by the runner) and the punctuators' clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from app.engine.applied import Applied
from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.models.dead_letter import DeadLetterRoute, dead_letter
from app.models.events import Rejection


class Processor:
    """One partition of a stage: its store, its outbox (what the next commit sends), its
    applied offset and outcomes (``outcomes``: the runner folds them into the metrics)."""

    def __init__(
        self, partition: int, store: PartitionStore, outbox: Outbox, dead_letters: DeadLetterRoute
    ) -> None:
        self.partition = partition
        self.store = store
        self.outbox = outbox
        self.dead_letters = dead_letters
        self.applied = Applied(store)
        self.outcomes: Counter[str] = Counter()
        self._punctuators: list[_Punctuator] = []

    @property
    def applied_offset(self) -> int:
        """The last input offset the state takes into account (stored with it)."""
        return self.applied.offset

    def first_time(self, offset: int) -> bool:
        """Take ``offset`` as applied; False (counted as a replay) when it was applied before."""
        if self.applied.advance(offset):
            return True
        self.outcomes["replayed"] += 1
        return False

    def process(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        if self.first_time(offset):
            self.step(offset, key, value, now_ms)

    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        """The stage's work for the record at ``offset``, applied for the first time."""
        raise NotImplementedError

    def dead_letter(
        self, offset: int, key: bytes | None, value: bytes | None, rejection: Rejection
    ) -> None:
        """Send the record at ``offset`` to the dead-letter topic, in the partition's next
        commit with the applied offset that moves past it."""
        route = self.dead_letters
        key, value, headers = dead_letter(route, rejection, self.partition, offset, key, value)
        self.outbox.add(route.topic, self.partition, key, value, headers)
        self.outcomes[f"rejected:{rejection.reason}"] += 1

    # -- punctuation --------------------------------------------------------------------
    def schedule(self, interval_s: float, punctuator: Callable[[], None]) -> None:
        """Call ``punctuator`` between records at most every ``interval_s`` of wall-clock time
        (Kafka Streams' wall-clock punctuation), the first time at the first ``punctuate``:
        what it writes goes with the partition's next commit."""
        self._punctuators.append(_Punctuator(int(interval_s * 1000), punctuator))

    def punctuate(self, now_ms: int, every: bool = False) -> bool:
        """Call the punctuators that are due (``every``: all of them, before the partition is
        committed for a handover); True when they left anything new to commit."""
        due = [p for p in self._punctuators if every or now_ms >= p.due_ms]
        if not due:
            return False
        before = len(self.outbox)
        for punctuator in due:
            punctuator.due_ms = now_ms + punctuator.interval_ms
            punctuator.call()
        return len(self.outbox) > before

    # -- commit -------------------------------------------------------------------------
    def commit_step(self, now_ms: int) -> None:
        """The stage's bookkeeping before a commit (retention, outputs kept for it)."""

    def positions(self) -> Mapping[bytes, int]:
        """What the stage stores with its applied offset (key -> integer), at each commit."""
        return {}

    def before_commit(self, now_ms: int) -> bool:
        """Stage bookkeeping and the applied offset for a commit; True when there is anything
        to commit (an offset applied, an output, a write of the bookkeeping's own)."""
        self.commit_step(now_ms)
        if not (self.applied.unstaged or len(self.outbox) or self.store.pending):
            return False
        self.applied.stage(self.positions())
        return True


@dataclass(slots=True)
class _Punctuator:
    interval_ms: int
    call: Callable[[], None]
    due_ms: int = 0
