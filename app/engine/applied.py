"""A stage partition's applied offset, kept in the partition's own store.

Each stage stores, next to its state, the last input offset that state includes, and the
positions its decisions depend on (stream time, the latest week). They are written into the
pending changes at commit, so they reach the changelog in the same transaction as the state
they describe, with the group offset after them: after any crash the restored store says
which input it holds already, and ``advance`` turns that input away when it comes again.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.engine.store import PartitionStore
from app.tables.keys import meta_key

APPLIED_KEY = meta_key("applied")


def seed(starts: Mapping[int, int]) -> dict[int, list[tuple[bytes, bytes]]]:
    """Per partition, the changelog records that make a fresh stage begin at its start offset
    there, as ``Applied`` reads them back once restored: the offset before it, applied
    (a replay's start). Nothing where it begins at 0, as a fresh partition does."""
    return {p: [(APPLIED_KEY, b"%d" % (start - 1))] for p, start in starts.items() if start > 0}


class Applied:
    def __init__(self, store: PartitionStore, key: bytes = APPLIED_KEY) -> None:
        self._store = store
        self._key = key
        self.offset = self.load(key, -1)
        self._staged = self.offset

    def load(self, key: bytes, default: int) -> int:
        """An integer the stage stored under ``key`` (its offset, a position), or ``default``."""
        raw = self._store.get(key)
        return int(raw) if raw is not None else default

    def advance(self, offset: int) -> bool:
        """Take ``offset`` as applied; False when it was applied before (a replay to skip)."""
        if offset <= self.offset:
            return False
        self.offset = offset
        return True

    @property
    def unstaged(self) -> bool:
        """Offsets were applied since the last ``stage``: there is something to commit."""
        return self.offset != self._staged

    def stage(self, positions: Mapping[bytes, int] | None = None) -> None:
        """Write the offset, and ``positions`` (key -> integer), into the pending changes."""
        put = self._store.put
        put(self._key, b"%d" % self.offset)
        for key, value in (positions or {}).items():
            put(key, b"%d" % value)
        self._staged = self.offset
