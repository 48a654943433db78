"""Which windows a shadow and the live app both cover, and how their answers differ (pure).

A shadow starts with empty state at ``--from``: no stream time, no remembered eventIds, no
hours or weeks before it. Its answers equal the live ones (same settings, same profiles) for
every window that lies after ``--from`` far enough that nothing before it counts, provided no
record before the start offsets has an event time at or after ``--from`` (true when producers'
record timestamps do not run ahead of the views' own timestamps). Then, on every partition,
lateness and duplicate decisions for those windows come out the same in both, and:

- an hour starting at or after ``--from`` holds the same views in both;
- an ISO week starting at or after ``--from`` likewise (weekly views, unique users, top 10);
- a spike of hour H also needs its baseline, the ``SPIKE_BASELINE_HOURS`` before H: compared
  from ``--from`` + the baseline on;
- a trend of week W also needs week W-1: compared from ``--from`` + one week on;
- a rented property's demand in hour H needs H's views and the property's state, which the
  shadow reads whole from the property events: compared from the first whole hour on.

Such a window is compared once its answer is final in both apps: it is closed (its end plus
grace is behind the stream time of both) or both have taken exactly the same input records
(same applied offset on the partition). Hours must also still be held by both (hourly
retention). Everything else is counted as not compared, with the reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.models.insights import (
    PROPERTY_HOURLY_SPIKE,
    RENTED_PROPERTY_DEMAND,
    SEGMENT_PROPERTY_TREND,
)
from app.readmodels.partials import SegmentWeek
from app.replay.snapshot import Snapshot
from app.settings import Settings
from app.engine.partitioner import key_partition
from app.windows import HOUR_MS, WEEK_MS, hour_start, iso_ms, parse_iso, week_start

HOURLY, WEEKLY, INSIGHT = "hourly", "weekly", "insight"
CHANGED, ONLY_LIVE, ONLY_SHADOW = "changed", "only_live", "only_shadow"
# What an insight is compared on: everything but detectedAt (the clock of the run).
INSIGHT_FIELDS = ("type", "subject", "windowStart", "windowEnd", "metrics")

BEFORE_FROM = "before --from"
EXPIRED = "expired (retention)"
OPEN = "still open"
WARM_UP = "in the warm-up"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Limits:
    """The settings of one app that decide when its windows are final or forgotten."""

    hourly_grace_ms: int
    weekly_grace_ms: int
    hourly_retention_ms: int
    weekly_retention_ms: int
    baseline_hours: int

    @classmethod
    def from_settings(cls, s: Settings) -> Limits:
        return cls(
            hourly_grace_ms=s.hourly_grace_seconds * 1000,
            weekly_grace_ms=s.weekly_grace_seconds * 1000,
            hourly_retention_ms=s.hourly_retention_seconds * 1000,
            weekly_retention_ms=s.weekly_retention_weeks * WEEK_MS,
            baseline_hours=s.spike_baseline_hours,
        )


@dataclass(frozen=True)
class Difference:
    kind: str  # HOURLY, WEEKLY or INSIGHT
    key: str  # "<propertyId> <hour>", "<segment> <week>" or the insightId
    change: str  # CHANGED, ONLY_LIVE or ONLY_SHADOW
    live: Any
    shadow: Any


@dataclass
class Comparison:
    differences: list[Difference] = field(default_factory=list)
    compared: Counter[str] = field(default_factory=Counter)  # kind -> windows compared
    skipped: Counter[str] = field(default_factory=Counter)  # "<kind> <reason>" -> windows
    notes: list[str] = field(default_factory=list)


def first_hour(from_ms: int) -> int:
    """The first hour that starts at or after ``from_ms``."""
    return hour_start(from_ms + HOUR_MS - 1)


def first_week(from_ms: int) -> int:
    """The first ISO week that starts at or after ``from_ms``."""
    return week_start(from_ms + WEEK_MS - 1)


class Coverage:
    """What both apps cover, per views partition (see the module docstring)."""

    def __init__(
        self,
        from_ms: int,
        partitions: int,
        live: Snapshot,
        shadow: Snapshot,
        live_limits: Limits,
        shadow_limits: Limits,
    ) -> None:
        self.partitions = partitions
        self.hour0 = first_hour(from_ms)
        self.week0 = first_week(from_ms)
        self._sides = ((live, live_limits), (shadow, shadow_limits))
        self._live, self._shadow = live, shadow
        self.hourly_grace_ms = max(live_limits.hourly_grace_ms, shadow_limits.hourly_grace_ms)
        self.weekly_grace_ms = max(live_limits.weekly_grace_ms, shadow_limits.weekly_grace_ms)
        self.baseline_hours = max(live_limits.baseline_hours, shadow_limits.baseline_hours)
        # Weeks both still hold: weekly windows are dropped behind the newest week seen.
        newest = max(
            (t for snap in (live, shadow) for t in snap.stream_time.values()), default=0
        )
        self.week_kept = max(
            week_start(newest) - limits.weekly_retention_ms + WEEK_MS for _, limits in self._sides
        )

    def same_input(self, partition: int) -> bool:
        return self._live.applied.get(partition, -1) == self._shadow.applied.get(partition, -1)

    def settled(self, partition: int) -> int:
        """Stream time both apps have reached on the partition."""
        return min(
            self._live.stream_time.get(partition, 0), self._shadow.stream_time.get(partition, 0)
        )

    def hour_kept(self, partition: int) -> int:
        """The first hour both still hold (one hour of margin on the retention)."""
        kept = [
            hour_start(snap.stream_time[partition] - limits.hourly_retention_ms) + HOUR_MS
            for snap, limits in self._sides
            if snap.stream_time.get(partition, 0) > 0
        ]
        return max(kept, default=self.hour0)

    def _hour_final(self, partition: int, hour: int) -> bool:
        return self.same_input(partition) or (
            hour + HOUR_MS + self.hourly_grace_ms <= self.settled(partition)
        )

    def _week_final(self, partition: int, week: int) -> bool:
        return self.same_input(partition) or (
            week + WEEK_MS + self.weekly_grace_ms <= self.settled(partition)
        )

    def hour(self, partition: int, hour: int) -> str | None:
        """None when the hour's counts are compared, else why not."""
        if hour < self.hour0:
            return BEFORE_FROM
        if hour < self.hour_kept(partition):
            return EXPIRED
        if not self._hour_final(partition, hour):
            return OPEN
        return None

    def week(self, week: int) -> str | None:
        if week < self.week0:
            return BEFORE_FROM
        if week < self.week_kept:
            return EXPIRED
        if not all(self._week_final(p, week) for p in range(self.partitions)):
            return OPEN
        return None

    def insight(self, doc: dict[str, Any]) -> str | None:
        try:
            kind = doc["type"]
            prop = doc["subject"]["propertyId"]
            start = parse_iso(doc["windowStart"])
        except (KeyError, TypeError, ValueError):
            return UNREADABLE
        if not isinstance(prop, str):
            return UNREADABLE
        partition = key_partition(prop.encode("utf-8", "surrogatepass"), self.partitions)
        if kind == PROPERTY_HOURLY_SPIKE:
            if start < self.hour0 + self.baseline_hours * HOUR_MS:
                return WARM_UP
            return None if self._hour_final(partition, start) else OPEN
        if kind == SEGMENT_PROPERTY_TREND:
            if start < self.week0 + WEEK_MS:
                return WARM_UP
            return None if self._week_final(partition, start) else OPEN
        if kind == RENTED_PROPERTY_DEMAND:
            if start < self.hour0:
                return WARM_UP
            return None if self._hour_final(partition, start) else OPEN
        return UNREADABLE


def hour_answer(counts: tuple[int, int] | None) -> dict[str, int]:
    views, users = counts or (0, 0)
    return {"views": views, "uniqueUsers": users}


def week_answer(week: SegmentWeek | None, with_users: bool) -> dict[str, Any]:
    week = week or SegmentWeek()
    answer: dict[str, Any] = {"views": week.views}
    if with_users:
        answer["uniqueUsers"] = week.unique_users
    answer["topProperties"] = [[prop, views] for prop, views in week.top_properties]
    return answer


def insight_essentials(doc: dict[str, Any]) -> dict[str, Any]:
    return {name: doc.get(name) for name in INSIGHT_FIELDS}


def compare(live: Snapshot, shadow: Snapshot, coverage: Coverage) -> Comparison:
    out = Comparison()
    _compare_hourly(live, shadow, coverage, out)
    _compare_weekly(live, shadow, coverage, out)
    _compare_insights(live, shadow, coverage, out)
    for snap, who in ((live, "live"), (shadow, "shadow")):
        for topic, n in sorted(snap.unreadable.items()):
            out.notes.append(f"{who}: {n} unreadable records of {topic} left out")
    return out


def _compare_hourly(live: Snapshot, shadow: Snapshot, cov: Coverage, out: Comparison) -> None:
    for partition in sorted(set(live.hourly) | set(shadow.hourly)):
        mine, theirs = live.hourly.get(partition, {}), shadow.hourly.get(partition, {})
        for prop, hour in sorted(set(mine) | set(theirs)):
            reason = cov.hour(partition, hour)
            if reason:
                out.skipped[f"{HOURLY} {reason}"] += 1
                continue
            out.compared[HOURLY] += 1
            a, b = hour_answer(mine.get((prop, hour))), hour_answer(theirs.get((prop, hour)))
            if a != b:
                out.differences.append(Difference(HOURLY, f"{prop} {iso_ms(hour)}", CHANGED, a, b))


def _compare_weekly(live: Snapshot, shadow: Snapshot, cov: Coverage, out: Comparison) -> None:
    with_users = live.segments_behind == 0 and shadow.segments_behind == 0
    if not with_users:
        out.notes.append(
            "weekly unique users not compared: the unique-users stage is behind by "
            f"{live.segments_behind} records (live) and {shadow.segments_behind} (shadow)"
        )
    for segment, week in sorted(set(live.weekly) | set(shadow.weekly), key=lambda k: (k[1], k[0])):
        reason = cov.week(week)
        if reason:
            out.skipped[f"{WEEKLY} {reason}"] += 1
            continue
        out.compared[WEEKLY] += 1
        a = week_answer(live.weekly.get((segment, week)), with_users)
        b = week_answer(shadow.weekly.get((segment, week)), with_users)
        if a != b:
            key = f"{segment} {iso_ms(week)[:10]}"
            out.differences.append(Difference(WEEKLY, key, CHANGED, a, b))


def _compare_insights(live: Snapshot, shadow: Snapshot, cov: Coverage, out: Comparison) -> None:
    for insight_id in sorted(set(live.insights) | set(shadow.insights)):
        mine, theirs = live.insights.get(insight_id), shadow.insights.get(insight_id)
        reason = cov.insight(mine if mine is not None else theirs)
        if reason:
            out.skipped[f"{INSIGHT} {reason}"] += 1
            continue
        out.compared[INSIGHT] += 1
        if theirs is None:
            out.differences.append(
                Difference(INSIGHT, insight_id, ONLY_LIVE, insight_essentials(mine), None)
            )
        elif mine is None:
            out.differences.append(
                Difference(INSIGHT, insight_id, ONLY_SHADOW, None, insight_essentials(theirs))
            )
        elif insight_essentials(mine) != insight_essentials(theirs):
            out.differences.append(
                Difference(
                    INSIGHT, insight_id, CHANGED,
                    insight_essentials(mine), insight_essentials(theirs),
                )
            )
