"""``seen_events``: event ids already accepted, for duplicate detection.

Keyed by (hour of the event, eventId): a resent event carries the same timestamp, so the
lookup is one get, and expiry past the dedupe horizon is a range delete.
"""

from __future__ import annotations

from app.state.store import PartitionStore
from app.tables.keys import family_range, window_key
from app.windows import hour_start

SEEN = "e"


class SeenEvents:
    def __init__(self, store: PartitionStore) -> None:
        self._store = store

    def seen(self, event_id: str, ts_ms: int) -> bool:
        return self._store.get(window_key(SEEN, hour_start(ts_ms), event_id)) is not None

    def remember(self, event_id: str, ts_ms: int) -> None:
        self._store.put(window_key(SEEN, hour_start(ts_ms), event_id), b"")

    def expire_before(self, hour_ms: int) -> int:
        start, end = family_range(SEEN, hour_ms)
        keys = [key for key, _ in self._store.scan(start, end)]
        for key in keys:
            self._store.delete(key)
        return len(keys)
