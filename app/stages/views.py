"""Per-partition processing of ``property.views``: validate, dedupe, window, count, detect.

One ViewsProcessor per owned partition. Every decision reads only this partition's state
and the event itself, in offset order, so a replay decides exactly as the first run did.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from app import codec, dedupe
from app.stages import by_user
from app.engine.processor import Processor
from app.models.dead_letter import DeadLetterRoute
from app.models.events import PropertyViewed, Rejection
from app.models.insights import (
    TrendInsight,
    rented_demand_insight,
    spike_insight,
    trend_insight,
)
from app.properties.aggregate import RENTED, PropertyState
from app.settings import Settings
from app.engine.partitioner import key_partition, text_partition
from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.tables.seen_events import SeenEvents
from app.tables.hourly import HourlyCounts, HourlyPropertyViews
from app.tables.keys import meta_key
from app.readmodels.partials import (
    VIEWS,
    partial_key,
    position_key,
    position_partial,
    views_partial,
)
from app.tables.weekly import WeeklySegmentPatterns
from app.trends import TrendRules, is_segment_trend, is_spike, ratio, spike_baseline
from app.windows import HOUR_MS, WEEK_MS, hour_start, is_late, week_start

log = logging.getLogger(__name__)

STREAM_TIME_KEY = meta_key("stream-time")
UNKNOWN_SEGMENT = "unknown"


@dataclass(slots=True, frozen=True)
class ViewsConfig:
    """What the views stage needs from Settings, in the units it computes with."""

    views_topic: str
    dlq_topic: str
    insights_topic: str
    insights_partitions: int
    repartition_topic: str
    partitions: int
    partials_topic: str
    max_value_bytes: int
    future_tolerance_ms: int
    hourly_grace_ms: int
    weekly_grace_ms: int
    hourly_retention_ms: int
    weekly_retention_ms: int
    dedupe_horizon_ms: int
    rules: TrendRules
    dlq_max_message_bytes: int
    partials_publish_s: float

    @classmethod
    def from_settings(cls, s: Settings) -> ViewsConfig:
        return cls(
            views_topic=s.views_topic,
            dlq_topic=s.dlq_views_topic,
            insights_topic=s.insights_topic,
            insights_partitions=s.insights_partitions,
            repartition_topic=s.segments_repartition_topic,
            partitions=s.topic_partitions,
            partials_topic=s.partials_topic,
            max_value_bytes=s.max_value_bytes,
            future_tolerance_ms=int(s.future_tolerance_seconds * 1000),
            hourly_grace_ms=s.hourly_grace_seconds * 1000,
            weekly_grace_ms=s.weekly_grace_seconds * 1000,
            hourly_retention_ms=s.hourly_retention_seconds * 1000,
            weekly_retention_ms=s.weekly_retention_weeks * WEEK_MS,
            dedupe_horizon_ms=s.dedupe_horizon_seconds * 1000,
            rules=TrendRules(
                spike_min_views=s.spike_min_views,
                spike_ratio=s.spike_ratio,
                spike_baseline_hours=s.spike_baseline_hours,
                trend_min_views=s.trend_min_views,
                trend_ratio=s.trend_ratio,
            ),
            dlq_max_message_bytes=s.dlq_max_message_bytes,
            partials_publish_s=s.partials_publish_seconds,
        )


def _no_property(property_id: str, ts_ms: int) -> None:
    return None


# The spike baselines memoised per property (``ViewsProcessor._baseline``): an entry serves
# only the views of its own hour, so entries of hours no view can count in any more are
# dropped when stream time enters a new hour, and the memo is emptied when it holds this many
# (a miss costs the SPIKE_BASELINE_HOURS reads it saves, never a different answer).
BASELINES_CACHED = 50_000


class ViewsProcessor(Processor):
    """State and rules of one ``property.views`` partition."""

    def __init__(
        self,
        partition: int,
        store: PartitionStore,
        outbox: Outbox,
        config: ViewsConfig,
        segment_of: Callable[[str], str | None],
        property_at: Callable[[str, int], PropertyState | None] | None = None,
    ) -> None:
        """``property_at(propertyId, ts)``: the property's aggregate as of a view's time
        (read from the properties stage of the same partition); None: no properties known."""
        super().__init__(
            partition, store, outbox,
            DeadLetterRoute(config.views_topic, config.dlq_topic, config.dlq_max_message_bytes),
        )
        self.config = config
        self._segment_of = segment_of
        self._property_at = property_at or _no_property
        self.hourly = HourlyPropertyViews(store)
        self.weekly = WeeklySegmentPatterns(store)
        self.seen = SeenEvents(store)
        self.stream_time = self.applied.load(STREAM_TIME_KEY, 0)
        self._expired_through_hour = hour_start(self.stream_time)
        self._last_seen_purge = self.stream_time
        # After a restart, republish every live (week, segment) share: a crash may have
        # come between committing counts and publishing them.
        self._unpublished: set[tuple[int, str]] = set(self.weekly.segment_weeks())
        self._published_position: int | None = None  # the offset last published with them
        self._baselines: dict[str, tuple[int, float]] = {}  # property -> (hour, baseline)
        # repartition partition -> distinct (user, week, segment) of this batch (see by_user)
        self._by_user: dict[int, set[by_user.Entry]] = {}
        self.schedule(config.partials_publish_s, self._publish_partials)

    # -- per event ----------------------------------------------------------------------
    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        cfg = self.config
        event = codec.decode_view(
            key,
            value,
            now_ms=now_ms,
            max_bytes=cfg.max_value_bytes,
            future_tolerance_ms=cfg.future_tolerance_ms,
        )
        if isinstance(event, Rejection):
            self.dead_letter(offset, key, value, event)
            return
        self._process_valid(offset, key, value, event, now_ms)

    def _process_valid(
        self, offset: int, key: bytes | None, value: bytes | None, event: PropertyViewed, now_ms: int
    ) -> None:
        cfg = self.config
        ts = event.timestamp_ms
        stream_time = self.stream_time
        accepted_at = self.seen.accepted_at(event.event_id)
        if dedupe.is_duplicate(accepted_at, stream_time, cfg.dedupe_horizon_ms):
            self.outcomes["duplicate"] += 1
            return
        hour = hour_start(ts)
        week = week_start(ts)
        hourly_late = is_late(hour + HOUR_MS, cfg.hourly_grace_ms, stream_time)
        weekly_late = is_late(week + WEEK_MS, cfg.weekly_grace_ms, stream_time)
        if hourly_late and weekly_late:
            self.dead_letter(
                offset, key, value, Rejection(codec.LATE, f"late for hour and week by stream time {stream_time}")
            )
            return
        self.outcomes["accepted"] += 1
        if hourly_late:
            self.outcomes["late_hourly"] += 1
        self.seen.remember(event.event_id, ts)
        if ts > stream_time:
            self.stream_time = ts
        segment = self._segment_of(event.user_id) or UNKNOWN_SEGMENT
        if not hourly_late:
            self._count_hourly(event, hour, now_ms)
        if not weekly_late:
            self._count_weekly(event, segment, week, now_ms)

    def _count_hourly(self, event: PropertyViewed, hour: int, now_ms: int) -> None:
        rules = self.config.rules
        prop = event.property_id
        counts = self.hourly.add_view(prop, hour, event.user_id)
        if not counts.demand_emitted and counts.views >= rules.spike_min_views:
            self._check_rented_demand(event, hour, counts, now_ms)
        cached = self._baselines.get(prop)
        if cached is not None and cached[0] != hour:
            # A view counted in one of the cached hour's baseline hours makes it stale.
            if hour < cached[0] and cached[0] - hour <= rules.spike_baseline_hours * HOUR_MS:
                del self._baselines[prop]
        if counts.spike_emitted or counts.views < rules.spike_min_views:
            return
        baseline = self._baseline(prop, hour)
        if not is_spike(counts.views, baseline, rules):
            return
        self.hourly.mark_spike_emitted(event.property_id, hour, counts)
        metrics = {
            "views": counts.views,
            "uniqueUsers": counts.unique_users,
            "baseline": round(baseline, 2),
            "ratio": ratio(counts.views, baseline),
        }
        self._emit(
            spike_insight(
                event.property_id, hour, hour + HOUR_MS, metrics, now_ms,
                self._summary(event.property_id, event.timestamp_ms),
            )
        )

    def _check_rented_demand(
        self, event: PropertyViewed, hour: int, counts: HourlyCounts, now_ms: int
    ) -> None:
        """A view of a property rented at the view's time, in an hour with at least the spike
        threshold of views: the hour's ``rented_property_demand``, once."""
        state = self._property_at(event.property_id, event.timestamp_ms)
        if state is None or state.status != RENTED:
            return
        self.hourly.mark_demand_emitted(event.property_id, hour, counts)
        metrics = {"views": counts.views, "uniqueUsers": counts.unique_users}
        self._emit(
            rented_demand_insight(
                event.property_id, hour, hour + HOUR_MS, metrics, now_ms, state.summary()
            )
        )

    def _summary(self, property_id: str, ts_ms: int) -> dict | None:
        state = self._property_at(property_id, ts_ms)
        return state.summary() if state is not None else None

    def _baseline(self, prop: str, hour: int) -> float:
        """Mean views of the preceding hours, memoised per property (24 reads otherwise)."""
        cached = self._baselines.get(prop)
        if cached is not None and cached[0] == hour:
            return cached[1]
        hours = self.config.rules.spike_baseline_hours
        baseline = spike_baseline(self.hourly.previous_views(prop, hour, hours), hours)
        if len(self._baselines) >= BASELINES_CACHED:
            self._baselines.clear()
        self._baselines[prop] = (hour, baseline)
        return baseline

    def _count_weekly(self, event: PropertyViewed, segment: str, week: int, now_ms: int) -> None:
        cfg = self.config
        counts = self.weekly.add_view(week, segment, event.property_id)
        self._unpublished.add((week, segment))
        user_id = event.user_id
        target = text_partition(user_id, cfg.partitions)
        entries = self._by_user.get(target)
        if entries is None:
            entries = self._by_user[target] = set()
        entries.add((user_id, week, segment))
        if counts.trend_emitted or counts.views < cfg.rules.trend_min_views:
            return
        previous = self.weekly.property_views(week - WEEK_MS, segment, event.property_id)
        if not is_segment_trend(counts.views, previous, cfg.rules):
            return
        self.weekly.mark_trend_emitted(week, segment, event.property_id, counts)
        metrics = {"views": counts.views, "previousViews": previous, "ratio": ratio(counts.views, previous)}
        self._emit(
            trend_insight(
                segment, event.property_id, week, week + WEEK_MS, metrics, now_ms,
                self._summary(event.property_id, event.timestamp_ms),
            )
        )

    def _emit(self, insight: TrendInsight) -> None:
        key = insight.insight_id.encode()
        cfg = self.config
        self.outbox.add(
            cfg.insights_topic, key_partition(key, cfg.insights_partitions), key, insight.to_bytes()
        )
        self.outcomes[f"insight:{insight.type}"] += 1

    # -- retention ----------------------------------------------------------------------
    def _expire(self) -> None:
        """Retention, once stream time has entered a new hour since it last ran."""
        cfg = self.config
        stream_time = self.stream_time
        if hour_start(stream_time) <= self._expired_through_hour:
            return
        self._expired_through_hour = hour_start(stream_time)
        self._prune_baselines()
        self.hourly.expire_before(hour_start(stream_time - cfg.hourly_retention_ms))
        if dedupe.purge_due(stream_time, self._last_seen_purge, cfg.dedupe_horizon_ms):
            self.seen.expire(stream_time - cfg.dedupe_horizon_ms)
            self._last_seen_purge = stream_time
        for week, segment in self.weekly.expire_before(week_start(stream_time) - cfg.weekly_retention_ms):
            self._unpublished.discard((week, segment))
            key = partial_key(VIEWS, self.partition, week, segment)
            self.outbox.add(cfg.partials_topic, 0, key, None)

    def _prune_baselines(self) -> None:
        """Drop the memoised baselines of hours every view is now late for."""
        grace, stream_time = self.config.hourly_grace_ms, self.stream_time
        closed = [
            prop for prop, (hour, _) in self._baselines.items()
            if is_late(hour + HOUR_MS, grace, stream_time)
        ]
        for prop in closed:
            del self._baselines[prop]

    # -- commit -------------------------------------------------------------------------
    def commit_step(self, now_ms: int) -> None:
        cfg = self.config
        self.hourly.flush()  # the hour summaries this round changed, once each
        # Retention once per commit, not when a view moves stream time into a new hour: a
        # range scan merges every pending write, which is cheapest once per commit. What it
        # removes is past every window's lateness, so no decision depends on when it runs.
        self._expire()
        for target, entries in self._by_user.items():
            packed = by_user.pack(entries)
            for value in packed.records:
                self.outbox.add(cfg.repartition_topic, target, by_user.KEY, value)
            for user_id, week, segment in packed.dropped:
                # Validated ids make entries of a few hundred bytes: this is a bug upstream.
                log.error(
                    "%s[%d]: views-by-user entry of a %d-byte userId (week %d, segment of %d "
                    "bytes) exceeds a record on its own; left out of the unique-user count",
                    cfg.repartition_topic, target, len(user_id.encode()), week,
                    len(segment.encode()),
                )
                self.outcomes[f"dropped:{cfg.repartition_topic}"] += 1
        self._by_user.clear()

    def positions(self) -> dict[bytes, int]:
        return {STREAM_TIME_KEY: self.stream_time}

    def _publish_partials(self) -> None:
        """Every PARTIALS_PUBLISH_SECONDS: the shares changed since, with their position (after
        retention: a week that expires is tombstoned, not published once more)."""
        self._expire()
        cfg = self.config
        for week, segment in sorted(self._unpublished):
            value = views_partial(
                self.weekly.segment_views(week, segment), self.weekly.top_properties(week, segment)
            )
            self.outbox.add(cfg.partials_topic, 0, partial_key(VIEWS, self.partition, week, segment), value)
        self._unpublished.clear()
        if self.applied.offset >= 0 and self.applied.offset != self._published_position:
            # With the shares: what they reflect (positions of segment-week answers).
            self.outbox.add(
                cfg.partials_topic, 0, position_key(self.partition),
                position_partial(self.applied.offset),
            )
            self._published_position = self.applied.offset
