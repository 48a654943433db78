"""``seen_events``: event ids already accepted, with their event time, for duplicate detection.

One key per eventId, so a resend is one get whatever its timestamp. Entries older than the
dedupe horizon are purged by a scan every few hours of stream time: each entry is visited a
handful of times in its life, O(1) per event amortised.
"""

from __future__ import annotations

from app.engine.store import PartitionStore
from app.tables.keys import family_range, plain_key

SEEN = "e"


def _key(event_id: str) -> bytes:
    return plain_key(SEEN, event_id)


class SeenEvents:
    def __init__(self, store: PartitionStore) -> None:
        self._store = store
        # the last id's key: a view's id is looked up, then remembered (one key built, not two)
        self._last_id: str | None = None
        self._last_key = b""

    def _key(self, event_id: str) -> bytes:
        if event_id != self._last_id:
            self._last_key = _key(event_id)
            self._last_id = event_id
        return self._last_key

    def accepted_at(self, event_id: str) -> int | None:
        """Event time (ms) of the accepted view with this id, if one is remembered."""
        raw = self._store.get(self._key(event_id))
        return int(raw) if raw is not None else None

    def remember(self, event_id: str, ts_ms: int) -> None:
        self._store.put(self._key(event_id), b"%d" % ts_ms)

    def expire(self, oldest_kept_ms: int) -> int:
        """Forget ids accepted with an event time before ``oldest_kept_ms``; returns how many."""
        start, end = family_range(SEEN)
        old = [key for key, raw in self._store.scan(start, end) if int(raw) < oldest_kept_ms]
        for key in old:
            self._store.delete(key)
        return len(old)
