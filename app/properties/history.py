"""A property as it was at a time, in O(log n) reads of its history of n events.

What the views stage joins a view with, and what ``GET /api/properties/{id}?asOf=`` answers.
A history is in time order and the table keeps the state after every ``SNAPSHOT_EVERY``-th
event (``app.tables.properties``), so the snapshots are in time order too: a binary search
over them finds the last one at or before the time, and at most ``SNAPSHOT_EVERY`` events
after it are read and applied. Every read is a point read (no range scan), so pending writes
cost nothing extra either.

A store written before snapshots existed lacks them until its backfill has reached the
property (``app.properties.snapshots``): then the answer is the whole history's fold, as
before. Either way it is exactly the fold of the events up to the time (the snapshots are
the stage's own states, verified by ``rebuild-properties``).
"""

from __future__ import annotations

from app.properties.aggregate import PropertyState, Refused, apply, rebuild
from app.tables.properties import PropertyTable


def state_at(table: PropertyTable, property_id: str, as_of_ms: int) -> PropertyState | None:
    """The property after its events with a timestamp at or before ``as_of_ms``; None when it
    did not exist then (or never did). One read when nothing happened since ``as_of_ms``."""
    current = table.state(property_id)
    if current is None or current.updated_at_ms <= as_of_ms:
        return current
    if current.created_at_ms > as_of_ms:
        return None
    # Snapshots k * every, k = 1..high, strictly before the current version (whose time is
    # after as_of_ms): find the greatest k whose snapshot is at or before as_of_ms.
    every = table.snapshot_every
    low, high = 0, (current.version - 1) // every
    base: PropertyState | None = None
    while low < high:
        middle = (low + high + 1) // 2
        snapshot = table.snapshot(property_id, middle * every)
        if snapshot is None:  # not backfilled yet: the whole history, as without snapshots
            return rebuild(table.history(property_id), as_of_ms)
        if snapshot.updated_at_ms <= as_of_ms:
            low, base = middle, snapshot
        else:
            high = middle - 1
    # Event (low + 1) * every, or the current one, is after as_of_ms: at most ``every`` reads
    # from here.
    state = base
    for version in range(low * every + 1, current.version + 1):
        stored = table.event(property_id, version)
        if stored is None:
            raise ValueError(f"history of {property_id!r} has no version {version}")
        if stored.event.timestamp_ms > as_of_ms:
            break
        result = apply(state, stored.event)
        if isinstance(result, Refused):
            raise ValueError(f"stored history of {property_id!r} does not apply: {result}")
        state = result
    return state
