"""``hourly_property_views``: views and exact unique users per (property, hour).

Lives in the ``property.views`` partition that owns the property. Unique users are counted
with one marker key per (hour, property, user), so the cost per view stays O(1) however
many users an hour has.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.engine.store import PartitionStore
from app.tables.keys import family_range, window_key
from app.windows import HOUR_MS

COUNTS = "h"
USERS = "hu"


@dataclass(slots=True)
class HourlyCounts:
    views: int = 0
    unique_users: int = 0
    spike_emitted: bool = False
    demand_emitted: bool = False  # the hour's rented_property_demand insight was published

    def to_bytes(self) -> bytes:
        if not self.demand_emitted:  # the form written before the flag existed
            return orjson.dumps((self.views, self.unique_users, self.spike_emitted))
        return orjson.dumps((self.views, self.unique_users, self.spike_emitted, True))

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> HourlyCounts:
        if raw is None:
            return cls()
        return cls(*orjson.loads(raw))


class HourlyPropertyViews:
    def __init__(self, store: PartitionStore) -> None:
        self._store = store

    def get(self, property_id: str, hour_ms: int) -> HourlyCounts:
        return HourlyCounts.from_bytes(self._store.get(window_key(COUNTS, hour_ms, property_id)))

    def add_view(self, property_id: str, hour_ms: int, user_id: str) -> HourlyCounts:
        """Count one accepted view; returns the updated counts (not yet committed)."""
        store = self._store
        counts_key = window_key(COUNTS, hour_ms, property_id)
        counts = HourlyCounts.from_bytes(store.get(counts_key))
        counts.views += 1
        user_key = window_key(USERS, hour_ms, property_id, user_id)
        if store.get(user_key) is None:
            store.put(user_key, b"")
            counts.unique_users += 1
        store.put(counts_key, counts.to_bytes())
        return counts

    def mark_spike_emitted(self, property_id: str, hour_ms: int, counts: HourlyCounts) -> None:
        counts.spike_emitted = True
        self._store.put(window_key(COUNTS, hour_ms, property_id), counts.to_bytes())

    def mark_demand_emitted(self, property_id: str, hour_ms: int, counts: HourlyCounts) -> None:
        counts.demand_emitted = True
        self._store.put(window_key(COUNTS, hour_ms, property_id), counts.to_bytes())

    def previous_views(self, property_id: str, hour_ms: int, hours: int) -> list[int]:
        """Views of the ``hours`` hours before ``hour_ms`` (0 where none)."""
        return [self.get(property_id, hour_ms - k * HOUR_MS).views for k in range(1, hours + 1)]

    def expire_before(self, hour_ms: int) -> int:
        """Delete every hour window starting before ``hour_ms``; returns keys deleted."""
        deleted = 0
        for family in (COUNTS, USERS):
            start, end = family_range(family, hour_ms)
            for key, _ in list(self._store.scan(start, end)):
                self._store.delete(key)
                deleted += 1
        return deleted
