"""``weekly_segment_patterns``: per ISO week and segment, views and the properties viewed.

Lives in the ``property.views`` partition of each property: each partition holds, for its own
properties, the views per (week, segment, property) and its share of the segment's views.
The segment's totals and top 10 are the merge of the partitions' partials (see
``app.readmodels.partials``); unique users per segment are counted by user instead
(``app.tables.segment_users``).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import orjson

from app.engine.store import PartitionStore
from app.tables.keys import family_range, split_key, window_key

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


class TopProperties:
    """The ``n`` most viewed properties of one (week, segment), maintained incrementally.

    Exact because counts only grow: a property outside the top can only enter it through
    its own increment, which is when it is compared with the current last place.
    """

    __slots__ = ("_n", "_views", "_last")

    def __init__(self, n: int = TOP_N) -> None:
        self._n = n
        self._views: dict[str, int] = {}
        self._last: tuple[str, int] | None = None  # last place, once the list is full

    def update(self, property_id: str, views: int) -> None:
        top = self._views
        if property_id in top or len(top) < self._n:
            top[property_id] = views
            last = self._last
            if len(top) == self._n and (last is None or last[0] == property_id):
                self._last = max(top.items(), key=_rank)
            return
        last = self._last
        assert last is not None
        if _rank((property_id, views)) < _rank(last):
            del top[last[0]]
            top[property_id] = views
            self._last = max(top.items(), key=_rank)

    def ranked(self) -> list[list]:
        return [[prop, views] for prop, views in sorted(self._views.items(), key=_rank)]


class WeeklySegmentPatterns:
    def __init__(self, store: PartitionStore) -> None:
        self._store = store
        self._tops: dict[tuple[int, str], TopProperties] = {}
        self._load_tops()

    def _load_tops(self) -> None:
        """Rebuild the in-memory top lists from the store (once, when a partition opens)."""
        start, end = family_range(PROPERTY_VIEWS)
        for key, raw in self._store.scan(start, end):
            _, week, (segment, prop) = split_key(key)
            self._top(week, segment).update(prop, SegmentPropertyCounts.from_bytes(raw).views)

    def _top(self, week_ms: int, segment: str) -> TopProperties:
        top = self._tops.get((week_ms, segment))
        if top is None:
            top = self._tops[(week_ms, segment)] = TopProperties()
        return top

    def add_view(self, week_ms: int, segment: str, property_id: str) -> SegmentPropertyCounts:
        store = self._store
        key = window_key(PROPERTY_VIEWS, week_ms, segment, property_id)
        counts = SegmentPropertyCounts.from_bytes(store.get(key))
        counts.views += 1
        store.put(key, counts.to_bytes())
        self._top(week_ms, segment).update(property_id, counts.views)
        segment_key = window_key(SEGMENT_VIEWS, week_ms, segment)
        raw = store.get(segment_key)
        store.put(segment_key, b"%d" % ((int(raw) if raw is not None else 0) + 1))
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
        return [(week, segment) for _, week, (segment,) in
                (split_key(key) for key, _ in self._store.scan(start, end))]

    def top_properties(self, week_ms: int, segment: str) -> list[list]:
        """This partition's most viewed properties: views desc, propertyId asc."""
        top = self._tops.get((week_ms, segment))
        return top.ranked() if top is not None else []

    def expire_before(self, week_ms: int) -> list[tuple[int, str]]:
        """Delete weeks starting before ``week_ms``; returns the (week, segment) pairs dropped."""
        dropped = []
        for family in (PROPERTY_VIEWS, SEGMENT_VIEWS):
            start, end = family_range(family, week_ms)
            for key, _ in list(self._store.scan(start, end)):
                self._store.delete(key)
                if family == SEGMENT_VIEWS:
                    _, week, (segment,) = split_key(key)
                    dropped.append((week, segment))
        for slot in [slot for slot in self._tops if slot[0] < week_ms]:
            del self._tops[slot]
        return dropped


def _rank(row: tuple[str, int]) -> tuple[int, str]:
    return (-row[1], row[0])


def merge_top(partials: list[list[list]], n: int = TOP_N) -> list[list]:
    """Global top ``n`` from per-partition top lists (each property lives in one partition)."""
    rows = ((prop, views) for top in partials for prop, views in top)
    return [[prop, views] for prop, views in heapq.nsmallest(n, rows, key=_rank)]
