"""``hourly_property_views``: views and exact unique users per (property, hour).

Lives in the ``property.views`` partition that owns the property. Unique users are counted
with one marker key per (hour, property, user), so the cost per view stays O(1) however
many users an hour has.

Each hour also has a summary (``SUMMARY``): its views, its number of properties and its
``LEADERS`` most viewed properties. Counts only grow, one view at a time, so keeping the
leaders exact needs only the property just viewed: it enters when it passes the last of them.
The dashboard's top N of an hour is then one read, whatever the number of properties, and
costs one changelog record per hour and commit. The summaries a round changes are kept in
memory and written once, by ``flush`` before the commit (encoding up to 50 leaders on every
view was 1.4 % of a worker's time); only committed state is read for them, so readers see
what they saw before. An hour whose first views were counted before summaries existed has
none and is read whole (``top_of_hour``) until retention drops it.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, insort
from dataclasses import dataclass

import orjson

from app.engine.store import PartitionStore
from app.tables.keys import family_range, split_key, window_key, window_prefix
from app.windows import HOUR_MS

COUNTS = "h"
USERS = "hu"
SUMMARY = "hs"  # (hour) -> [views, properties, {propertyId: [views, uniqueUsers]} of the leaders]
LEADERS = 50  # the most viewed properties a summary keeps: the dashboard's largest limit
_LEGACY_HOURS_KEPT = 256
_DECODED_KEPT = 8


@dataclass(slots=True, frozen=True)
class HourTop:
    """An hour's most viewed properties in one partition, and its totals."""

    rows: list[tuple[int, str, int]]  # (views, propertyId, uniqueUsers), most viewed first
    views: int
    properties: int


def _rank(views: int, prop: str) -> tuple[int, str]:
    return -views, prop


class HourSummary:
    """An hour's views, properties and leaders, as stored; ``add`` keeps the leaders the
    exact top ``LEADERS`` by (views descending, propertyId ascending)."""

    __slots__ = ("views", "properties", "leaders", "_ranks")

    def __init__(self, views: int = 0, properties: int = 0, leaders: dict | None = None) -> None:
        self.views = views
        self.properties = properties
        self.leaders: dict[str, list[int]] = leaders if leaders is not None else {}
        # the leaders' ranks in order, made when first needed: with a list kept sorted, the
        # last leader is known at once (found with max() over every leader after each change
        # of the last place, it was 3 % of a worker's time)
        self._ranks: list[tuple[int, str]] | None = None

    @classmethod
    def from_bytes(cls, raw: bytes) -> HourSummary:
        views, properties, leaders = orjson.loads(raw)
        return cls(views, properties, leaders)

    def to_bytes(self) -> bytes:
        return orjson.dumps([self.views, self.properties, self.leaders])

    def ranks(self) -> list[tuple[int, str]]:
        """The leaders' (-views, propertyId), best first."""
        if self._ranks is None:
            self._ranks = sorted(_rank(v, p) for p, (v, _) in self.leaders.items())
        return self._ranks

    def last(self) -> tuple[int, str]:
        return self.ranks()[-1]

    def add(self, prop: str, views: int, users: int) -> None:
        """One more view of ``prop``, which now has ``views`` views from ``users`` users.
        Counts only grow, so a property outside the leaders can only enter by passing the
        last of them, and none of them can fall behind one outside."""
        self.views += 1
        if views == 1:
            self.properties += 1
        leaders, ranks = self.leaders, self._ranks
        row = leaders.get(prop)
        if row is not None:
            if ranks is not None:
                del ranks[bisect_left(ranks, _rank(row[0], prop))]
                insort(ranks, _rank(views, prop))
            row[0], row[1] = views, users
            return
        if len(leaders) < LEADERS:
            leaders[prop] = [views, users]
            if ranks is not None:
                insort(ranks, _rank(views, prop))
            return
        ranks = self.ranks()
        rank = _rank(views, prop)
        if rank < ranks[-1]:
            del leaders[ranks.pop()[1]]
            leaders[prop] = [views, users]
            insort(ranks, rank)

    def top(self, limit: int) -> list[tuple[int, str, int]]:
        leaders = self.leaders
        return [(-views, prop, leaders[prop][1]) for views, prop in self.ranks()[:limit]]


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
        self._legacy: set[int] = set()  # hours counted before they had a summary
        # hour -> (the summary's bytes as last written, decoded): decoding once per commit,
        # not per view (a read returning other bytes, after a commit or a rollback, decodes)
        self._decoded: dict[int, tuple[bytes, HourSummary]] = {}
        # hour -> the summary changed since the last ``flush``, not in the store yet; valid
        # for the store's pending set it was changed over (``_changed_over``): a rollback
        # starts a new one, and the changes go with it
        self._changed: dict[int, HourSummary] = {}
        self._changed_over: dict | None = None

    def get(self, property_id: str, hour_ms: int) -> HourlyCounts:
        return HourlyCounts.from_bytes(self._store.get(window_key(COUNTS, hour_ms, property_id)))

    def add_view(self, property_id: str, hour_ms: int, user_id: str) -> HourlyCounts:
        """Count one accepted view; returns the updated counts (not yet committed)."""
        store = self._store
        summary = self._summary(hour_ms)
        counts_key = window_key(COUNTS, hour_ms, property_id)
        counts = HourlyCounts.from_bytes(store.get(counts_key))
        counts.views += 1
        user_key = window_key(USERS, hour_ms, property_id, user_id)
        if store.get(user_key) is None:
            store.put(user_key, b"")
            counts.unique_users += 1
        store.put(counts_key, counts.to_bytes())
        if summary is not None:
            summary.add(property_id, counts.views, counts.unique_users)
            self._changed[hour_ms] = summary
        return counts

    def flush(self) -> None:
        """Write the summaries changed since the last flush to the store, once each: before
        the store's pending writes are sealed for a commit (the processor's
        ``before_commit``)."""
        changed = self._changed
        if not changed or self._store.pending is not self._changed_over:
            changed.clear()  # nothing, or changes rolled back with the writes they went with
            return
        store = self._store
        for hour_ms, summary in changed.items():
            raw = summary.to_bytes()
            store.put(window_key(SUMMARY, hour_ms), raw)
            if len(self._decoded) >= _DECODED_KEPT:
                self._decoded.clear()
            self._decoded[hour_ms] = (raw, summary)
        changed.clear()

    def _summary(self, hour_ms: int) -> HourSummary | None:
        """The hour's summary to update; a new one for an hour without counts yet, None for
        an hour counted before summaries existed."""
        pending = self._store.pending
        if pending is not self._changed_over:
            # A new pending set: after a flush and seal, or a rollback of what was changed.
            self._changed.clear()
            self._changed_over = pending
        else:
            changed = self._changed.get(hour_ms)
            if changed is not None:
                return changed
        raw = self._store.get(window_key(SUMMARY, hour_ms))
        if raw is not None:
            # Taken out of the cache: changed from now on, it no longer matches ``raw``.
            cached = self._decoded.pop(hour_ms, None)
            if cached is not None and cached[0] is raw:
                return cached[1]
            return HourSummary.from_bytes(raw)
        if hour_ms in self._legacy:
            return None
        start, end = window_prefix(COUNTS, hour_ms)
        if next(iter(self._store.scan(start, end)), None) is None:
            return HourSummary()
        if len(self._legacy) >= _LEGACY_HOURS_KEPT:
            self._legacy.clear()
        self._legacy.add(hour_ms)
        return None

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
        self.flush()  # then a summary of an expired hour is deleted with the rest
        deleted = 0
        for family in (COUNTS, USERS, SUMMARY):
            start, end = family_range(family, hour_ms)
            for key, _ in list(self._store.scan(start, end)):
                self._store.delete(key)
                deleted += 1
        return deleted


def top_of_hour(store, hour_ms: int, limit: int) -> HourTop:  # noqa: ANN001 - any store's reads
    """The ``limit`` (at most ``LEADERS``) most viewed properties of ``hour_ms`` in ``store``
    (ties: propertyId ascending) and the hour's totals: one read, or every property of an
    hour counted before it had a summary."""
    raw = store.get(window_key(SUMMARY, hour_ms))
    if raw is not None:
        summary = HourSummary.from_bytes(raw)
        return HourTop(summary.top(limit), summary.views, summary.properties)
    start, end = window_prefix(COUNTS, hour_ms)
    every: list[tuple[int, str, int]] = []
    for key, value in store.scan(start, end):
        counts = HourlyCounts.from_bytes(value)
        every.append((counts.views, split_key(key).parts[0], counts.unique_users))
    best = heapq.nsmallest(limit, every, key=lambda r: (-r[0], r[1]))
    return HourTop(best, sum(r[0] for r in every), len(every))
