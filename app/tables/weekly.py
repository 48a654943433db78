"""``weekly_segment_patterns``: per ISO week and segment, views and the properties viewed.

Lives in the ``property.views`` partition of each property: each partition holds, for its own
properties, the views per (week, segment, property) and its share of the segment's views.
The segment's totals and top 10 are the merge of the partitions' partials (see
``app.tables.partials``); unique users per segment are counted by user instead
(``app.tables.segment_users``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import orjson

from app.state.store import PartitionStore
from app.tables.keys import family_range, split_key, window_key, window_prefix

PROPERTY_VIEWS = "w"
SEGMENT_VIEWS = "ws"
TOP_N = 10


@dataclass(slots=True)
class SegmentPropertyCounts:
    views: int = 0
    trend_emitted: bool = False

    def to_bytes(self) -> bytes:
        return orjson.dumps((self.views, self.trend_emitted))

    @classmethod
    def from_bytes(cls, raw: bytes | None) -> SegmentPropertyCounts:
        if raw is None:
            return cls()
        views, trend_emitted = orjson.loads(raw)
        return cls(views, trend_emitted)


class WeeklySegmentPatterns:
    def __init__(self, store: PartitionStore) -> None:
        self._store = store

    def add_view(self, week_ms: int, segment: str, property_id: str) -> SegmentPropertyCounts:
        store = self._store
        key = window_key(PROPERTY_VIEWS, week_ms, segment, property_id)
        counts = SegmentPropertyCounts.from_bytes(store.get(key))
        counts.views += 1
        store.put(key, counts.to_bytes())
        segment_key = window_key(SEGMENT_VIEWS, week_ms, segment)
        store.put(segment_key, b"%d" % (self.segment_views(week_ms, segment) + 1))
        return counts

    def property_views(self, week_ms: int, segment: str, property_id: str) -> int:
        raw = self._store.get(window_key(PROPERTY_VIEWS, week_ms, segment, property_id))
        return SegmentPropertyCounts.from_bytes(raw).views

    def mark_trend_emitted(
        self, week_ms: int, segment: str, property_id: str, counts: SegmentPropertyCounts
    ) -> None:
        counts.trend_emitted = True
        key = window_key(PROPERTY_VIEWS, week_ms, segment, property_id)
        self._store.put(key, counts.to_bytes())

    def segment_views(self, week_ms: int, segment: str) -> int:
        raw = self._store.get(window_key(SEGMENT_VIEWS, week_ms, segment))
        return int(raw) if raw is not None else 0

    def segment_weeks(self) -> list[tuple[int, str]]:
        """Every (week, segment) this partition holds views for."""
        start, end = family_range(SEGMENT_VIEWS)
        return [(int(week), segment) for _, week, segment in
                (split_key(key) for key, _ in self._store.scan(start, end))]

    def top_properties(self, week_ms: int, segment: str, n: int = TOP_N) -> list[list]:
        """This partition's ``n`` most viewed properties: views desc, propertyId asc."""
        start, end = window_prefix(PROPERTY_VIEWS, week_ms, segment)
        rows = (
            (split_key(key)[3], SegmentPropertyCounts.from_bytes(raw).views)
            for key, raw in self._store.scan(start, end)
        )
        return [[prop, views] for prop, views in heapq.nsmallest(n, rows, key=_rank)]

    def expire_before(self, week_ms: int) -> list[tuple[int, str]]:
        """Delete weeks starting before ``week_ms``; returns the (week, segment) pairs dropped."""
        dropped = []
        for family in (PROPERTY_VIEWS, SEGMENT_VIEWS):
            start, end = family_range(family, week_ms)
            for key, _ in list(self._store.scan(start, end)):
                self._store.delete(key)
                if family == SEGMENT_VIEWS:
                    _, week, segment = split_key(key)
                    dropped.append((int(week), segment))
        return dropped


def _rank(row: tuple[str, int]) -> tuple[int, str]:
    return (-row[1], row[0])


def merge_top(partials: list[list[list]], n: int = TOP_N) -> list[list]:
    """Global top ``n`` from per-partition top lists (each property lives in one partition)."""
    rows = ((prop, views) for top in partials for prop, views in top)
    return [[prop, views] for prop, views in heapq.nsmallest(n, rows, key=_rank)]
