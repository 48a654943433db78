"""``properties``: each property's current state, its event history (the event store) and
the event ids it has applied, in the ``property.events`` partition that owns the property.

Keys (``app.tables.keys``): the state under ``ps <propertyId>``; the n-th applied event under
``ph <propertyId>`` followed by n as 8 big-endian bytes, so one property's history is one
range, in version order; applied event ids under ``pe <propertyId> <eventId>``. The
history is kept for ever (it is the aggregate's log), the state is its fold.

Snapshots: the state after every ``SNAPSHOT_EVERY``-th event, under ``pn <propertyId>``
followed by its version as 8 big-endian bytes, written with that event. The state at any time
is then the last snapshot before it plus at most ``SNAPSHOT_EVERY`` events
(``app.properties.history``), however long the history. The interval is part of the stored
layout: snapshots of another interval would be left unread and counted as differences by
``rebuild-properties``.
"""

from __future__ import annotations

from collections.abc import Iterator

from app.engine.store import CommittedState, PartitionStore
from app.properties.aggregate import PropertyState, StoredEvent
from app.tables.keys import family_range, plain_key, prefix_range

STATE = "ps"
HISTORY = "ph"
APPLIED_IDS = "pe"
SNAPSHOTS = "pn"
SNAPSHOT_EVERY = 32
_VERSION_BYTES = 8


def _history_key(property_id: str, version: int) -> bytes:
    return plain_key(HISTORY, property_id) + version.to_bytes(_VERSION_BYTES, "big")


def _snapshot_key(property_id: str, version: int) -> bytes:
    return plain_key(SNAPSHOTS, property_id) + version.to_bytes(_VERSION_BYTES, "big")


class PropertyTable:
    """Reads (and, over a partition's store, writes) of the aggregate state. Takes a
    ``PartitionStore`` (the stage, pending writes seen) or its ``CommittedState`` (HTTP)."""

    def __init__(
        self, store: PartitionStore | CommittedState, snapshot_every: int = SNAPSHOT_EVERY
    ) -> None:
        """``snapshot_every``: the interval of the stored layout; another only in tests."""
        self._store = store
        self.snapshot_every = snapshot_every

    def state(self, property_id: str) -> PropertyState | None:
        raw = self._store.get(plain_key(STATE, property_id))
        return PropertyState.from_bytes(raw) if raw is not None else None

    def history(self, property_id: str, after_version: int = 0) -> Iterator[StoredEvent]:
        """The applied events after ``after_version``, oldest first."""
        start, end = prefix_range(plain_key(HISTORY, property_id))
        if after_version > 0:
            start = _history_key(property_id, after_version + 1)
        for _, raw in self._store.scan(start, end):
            yield StoredEvent.from_bytes(raw)

    def event(self, property_id: str, version: int) -> StoredEvent | None:
        """The applied event of ``version`` (one read), or None."""
        raw = self._store.get(_history_key(property_id, version))
        return StoredEvent.from_bytes(raw) if raw is not None else None

    def snapshot(self, property_id: str, version: int) -> PropertyState | None:
        """The state after event ``version`` (a multiple of ``snapshot_every``) when its
        snapshot is stored, else None."""
        raw = self._store.get(_snapshot_key(property_id, version))
        return PropertyState.from_bytes(raw) if raw is not None else None

    def has_applied(self, property_id: str, event_id: str) -> bool:
        return self._store.get(plain_key(APPLIED_IDS, property_id, event_id)) is not None

    def property_ids(self, after: str | None = None) -> Iterator[str]:
        """Every property with a state (only those after ``after``), in key order."""
        start, end = family_range(STATE)
        if after is not None:
            start = plain_key(STATE, after) + b"\x00"  # the least key above ``after``'s
        for _, raw in self._store.scan(start, end):
            yield PropertyState.from_bytes(raw).property_id

    # -- writes (the stage only) ---------------------------------------------------------
    def record(self, state: PropertyState, stored: StoredEvent) -> None:
        """An event applied: its history entry, its id, and the new state."""
        store = self._store
        assert isinstance(store, PartitionStore)
        event = stored.event
        store.put(_history_key(state.property_id, stored.version), stored.to_bytes())
        store.put(plain_key(APPLIED_IDS, state.property_id, event.event_id), b"%d" % stored.version)
        store.put(plain_key(STATE, state.property_id), state.to_bytes())
        if stored.version % self.snapshot_every == 0:
            store.put(_snapshot_key(state.property_id, stored.version), state.to_bytes())

    def save_snapshot(self, state: PropertyState) -> bool:
        """Store ``state`` as its version's snapshot (a backfill) unless it is stored; True
        when it was written."""
        store = self._store
        assert isinstance(store, PartitionStore) and state.version % self.snapshot_every == 0
        key = _snapshot_key(state.property_id, state.version)
        if store.get(key) is not None:
            return False
        store.put(key, state.to_bytes())
        return True
