"""``segment_weekly_users``: exact unique users per (ISO week, segment).

Lives in the partitions of the views-by-user repartition topic, so each user is counted in
exactly one partition and the partitions' counts add up. One marker key per
(week, segment, user) keeps the cost per view O(1), and makes a repeated view a no-op.
"""

from __future__ import annotations

from app.engine.store import PartitionStore
from app.tables.keys import family_range, split_key, window_key

USERS = "su"
COUNTS = "sc"


class SegmentWeeklyUsers:
    def __init__(self, store: PartitionStore) -> None:
        self._store = store

    def add_user(self, week_ms: int, segment: str, user_id: str) -> bool:
        """Record a view; True when the user is new for this (week, segment)."""
        marker = window_key(USERS, week_ms, segment, user_id)
        if self._store.get(marker) is not None:
            return False
        self._store.put(marker, b"")
        self._store.put(
            window_key(COUNTS, week_ms, segment), b"%d" % (self.unique_users(week_ms, segment) + 1)
        )
        return True

    def unique_users(self, week_ms: int, segment: str) -> int:
        raw = self._store.get(window_key(COUNTS, week_ms, segment))
        return int(raw) if raw is not None else 0

    def segment_weeks(self) -> list[tuple[int, str]]:
        start, end = family_range(COUNTS)
        return [(week, segment) for _, week, (segment,) in
                (split_key(key) for key, _ in self._store.scan(start, end))]

    def expire_before(self, week_ms: int) -> list[tuple[int, str]]:
        dropped = []
        for family in (USERS, COUNTS):
            start, end = family_range(family, week_ms)
            for key, _ in list(self._store.scan(start, end)):
                self._store.delete(key)
                if family == COUNTS:
                    _, week, (segment,) = split_key(key)
                    dropped.append((week, segment))
        return dropped
