"""Backfill: the snapshots of a store written before snapshots existed, a little per commit.

New events write their snapshots as they apply (``PropertyTable.record``). A store from an
older version has histories without them: until they exist, a point-in-time read of such a
property folds its whole history (``app.properties.history``), correct but as slow as before.
So each partition of the properties stage folds its stored histories once, property by
property in key order, at most ``BUDGET_EVENTS`` events per commit, writing each missing
snapshot into the pending changes: they reach the changelog, and RocksDB, in the same
transaction as the stage's other work, with the position reached under ``PROGRESS_KEY``
(``<version> <propertyId>``, or ``done``). A crash resumes from the last committed position.
A fresh store is marked done at its first commit.
"""

from __future__ import annotations

import logging

from app.engine.store import PartitionStore
from app.properties.aggregate import rebuild
from app.tables.keys import meta_key
from app.tables.properties import PropertyTable

log = logging.getLogger(__name__)

PROGRESS_KEY = meta_key("property-snapshots")
DONE = b"done"
BUDGET_EVENTS = 10_000  # per commit: a short block of the event loop (docs/measurements.md)


def is_done(raw: bytes | None) -> bool:
    return raw == DONE


def step(table: PropertyTable, store: PartitionStore, budget: int = BUDGET_EVENTS) -> bool:
    """Backfill, over ``table`` (reading and writing ``store``), up to about ``budget``
    events' worth of snapshots; True when it wrote anything (snapshots or its position)."""
    raw = store.get(PROGRESS_KEY)
    if is_done(raw):
        return False
    property_id, version = _position(raw)
    if property_id is None:
        property_id = next(table.property_ids(), None)
    folded = written = 0
    while property_id is not None:
        state = table.snapshot(property_id, version) if version else None
        if state is None:  # from its start (also if its snapshot were missing: never, but exact)
            version = 0
        for stored in table.history(property_id, after_version=version):
            state = rebuild((stored,), state=state)
            folded += 1
            if stored.version % table.snapshot_every == 0:
                assert state is not None
                written += table.save_snapshot(state)
                if folded >= budget:
                    store.put(PROGRESS_KEY, _encode_position(property_id, stored.version))
                    return True
        property_id = next(table.property_ids(after=property_id), None)
        version = 0
    store.put(PROGRESS_KEY, DONE)
    if written:
        log.info("%s: property snapshots backfilled, the last %d now", store.path, written)
    return True


def _encode_position(property_id: str, version: int) -> bytes:
    return b"%d " % version + property_id.encode("utf-8", "surrogatepass")


def _position(raw: bytes | None) -> tuple[str | None, int]:
    """Where the backfill stopped: (propertyId, version), (None, 0) at the start."""
    if raw is None:
        return None, 0
    version, _, property_id = raw.partition(b" ")
    return property_id.decode("utf-8", "surrogatepass"), int(version)
