"""ViewsProcessor over a real RocksDB: acceptance, dedupe, lateness, DLQ, counts, insights,
replay and retention, with exact expected values for fixed event times."""

from __future__ import annotations

import orjson
import pytest

from app.stages import by_user
from app.engine.applied import APPLIED_KEY
from app.stages.views import (
    STREAM_TIME_KEY,
    ViewsConfig,
    ViewsProcessor,
)
from app.engine.partitioner import key_partition
from app.settings import Settings
from app.engine.transactions import Outbox
from app.tables.hourly import COUNTS, HourlyCounts
from app.tables.keys import window_key
from app.readmodels.partials import VIEWS, partial_key, position_key
from app.trends import TrendRules
from app.windows import HOUR_MS, WEEK_MS, hour_start, iso_ms, parse_iso

from .harness import Driver, Record, view_bytes

P = 3  # the property.views partition under test
MIN = 60_000
NOW = parse_iso("2026-12-01T00:00:00Z")  # wall clock: after every event time below
H14 = parse_iso("2026-11-20T14:00:00Z")  # a Friday hour
W47 = parse_iso("2026-11-16T00:00:00Z")  # its ISO week
W48 = W47 + WEEK_MS
REPARTITION = "property-analytics-views-by-user-repartition"
PARTIALS = "property-analytics-segment-partials"
INSIGHTS = "analytics.insights"
DLQ = "property.views.dlq"
SEGMENTS = {f"inv-{i}": "investor" for i in range(20)} | {f"rent-{i}": "renter" for i in range(20)}


def config(**settings) -> ViewsConfig:
    return ViewsConfig.from_settings(Settings(**settings))


@pytest.fixture
def make(open_store):
    """make() -> a Driver over a ViewsProcessor of partition P on the store "views-003"."""

    def make_(segments=SEGMENTS, cfg: ViewsConfig | None = None, store=None) -> Driver:
        store = store or open_store("views-003")
        proc = ViewsProcessor(P, store, Outbox(), cfg or config(), dict(segments).get)
        return Driver(proc, NOW)

    return make_


def reopen(driver: Driver, open_store, segments=SEGMENTS) -> Driver:
    """Close the partition's store and open a new processor over the same files."""
    driver.proc.store.close()
    store = open_store("views-003")
    proc = ViewsProcessor(P, store, Outbox(), driver.proc.config, dict(segments).get)
    fresh = Driver(proc, driver.now_ms)
    fresh.changelog_offset = driver.changelog_offset
    return fresh


def insights(recs: list[Record], kind: str | None = None) -> list[dict]:
    docs = [orjson.loads(r.value) for r in recs if r.topic == INSIGHTS]
    return [d for d in docs if kind is None or d["type"] == kind]


def headers(rec: Record) -> dict[str, bytes]:
    return dict(rec.headers)


def published_partials(d: Driver) -> list[tuple[bytes, dict | None]]:
    """The shares published (the position records that go with them left out)."""
    return [
        (r.key, r.value and orjson.loads(r.value))
        for r in d.published
        if r.topic == PARTIALS and r.key != position_key(P)
    ]


# -- configuration and partitioning --------------------------------------------------------


def test_config_from_settings_in_milliseconds():
    cfg = config(topic_partitions=6, spike_min_views=25, trend_ratio=2.5)
    assert cfg.views_topic == "property.views"
    assert cfg.dlq_topic == DLQ
    assert cfg.insights_topic == INSIGHTS
    assert cfg.insights_partitions == 1
    assert cfg.repartition_topic == REPARTITION
    assert cfg.partials_topic == PARTIALS
    assert cfg.partitions == 6
    assert cfg.max_value_bytes == 65536
    assert cfg.future_tolerance_ms == 300_000
    assert cfg.hourly_grace_ms == 900_000
    assert cfg.weekly_grace_ms == 3_600_000
    assert cfg.hourly_retention_ms == 172_800_000
    assert cfg.weekly_retention_ms == 5 * WEEK_MS
    assert cfg.dedupe_horizon_ms == 86_400_000
    assert cfg.rules == TrendRules(25, 3.0, 24, 50, 2.5)


# -- accepted views ------------------------------------------------------------------------


def test_accepted_view_counts_hourly_weekly_and_repartitions_by_user(make):
    d = make()
    ts = H14 + 3 * MIN + 7_120
    d.view("ev-1", ts, prop="prop-812", user="inv-1")

    proc = d.proc
    assert proc.outcomes == {"accepted": 1}
    assert proc.stream_time == ts
    assert proc.applied_offset == 0
    assert proc.hourly.get("prop-812", H14) == HourlyCounts(1, 1, False)
    assert proc.weekly.property_views(W47, "investor", "prop-812") == 1
    assert proc.weekly.segment_views(W47, "investor") == 1
    assert d.pending() == []  # views-by-user records are made at commit, one per partition
    assert d.by_user() == [(key_partition(b"inv-1", 12), "inv-1", W47, "investor")]
    [record] = [r for r in d.published if r.topic == REPARTITION]
    assert record.key == by_user.KEY


def test_user_without_profile_is_segment_unknown(make):
    d = make(segments={})
    d.view("ev-1", H14, user="nobody")
    assert d.proc.weekly.segment_views(W47, "unknown") == 1
    assert [entry[1:] for entry in d.by_user()] == [("nobody", W47, "unknown")]


def test_hourly_unique_users_exact_with_repeated_users(make):
    d = make()
    for i, user in enumerate(["inv-1", "inv-2", "inv-1", "rent-1", "inv-2", "inv-1"]):
        d.view(f"ev-{i}", H14 + i * MIN, user=user)

    assert d.proc.hourly.get("prop-1", H14) == HourlyCounts(6, 3, False)
    assert d.proc.weekly.property_views(W47, "investor", "prop-1") == 5
    assert d.proc.weekly.property_views(W47, "renter", "prop-1") == 1
    # one entry per distinct (user, week, segment) of the batch; users dedupe downstream
    assert sorted(entry[1] for entry in d.by_user()) == ["inv-1", "inv-2", "rent-1"]


def test_stream_time_is_the_largest_accepted_timestamp(make):
    d = make()
    d.view("ev-1", H14 + 30 * MIN)
    d.view("ev-2", H14 + 10 * MIN)  # out of order, not late
    assert d.proc.stream_time == H14 + 30 * MIN
    assert d.proc.hourly.get("prop-1", H14).views == 2


# -- duplicates ----------------------------------------------------------------------------


def test_duplicate_is_skipped_and_counted_not_rejected(make):
    d = make()
    d.view("ev-1", H14 + MIN, user="inv-1")
    d.view("ev-1", H14 + MIN, user="inv-1")

    assert d.proc.outcomes == {"accepted": 1, "duplicate": 1}
    assert d.proc.hourly.get("prop-1", H14) == HourlyCounts(1, 1, False)
    assert d.proc.weekly.segment_views(W47, "investor") == 1
    assert d.pending(DLQ) == []
    assert len(d.by_user()) == 1
    assert d.proc.applied_offset == 1


def test_duplicate_by_event_id_alone_does_not_move_stream_time(make):
    d = make()
    d.view("ev-1", H14 + MIN)
    d.view("ev-1", H14 + 50 * MIN)  # same id, other timestamp: still the same event

    assert d.proc.outcomes["duplicate"] == 1
    assert d.proc.stream_time == H14 + MIN
    assert d.proc.hourly.get("prop-1", H14).views == 1


def test_duplicate_detected_after_commit_and_restart(make, open_store):
    d = make()
    d.view("ev-1", H14 + MIN)
    assert d.commit()
    d = reopen(d, open_store)
    d.view("ev-1", H14 + MIN)
    assert d.proc.outcomes == {"duplicate": 1}
    assert d.proc.hourly.get("prop-1", H14).views == 1


def test_duplicate_within_the_horizon_but_not_beyond(make):
    d = make()
    d.view("ev-1", H14)
    d.view("ev-2", H14 + 24 * HOUR_MS - 1)  # stream time: 1 ms short of the horizon
    d.view("ev-1", H14)
    assert d.proc.outcomes["duplicate"] == 1

    d.view("ev-3", H14 + 24 * HOUR_MS)  # now exactly the horizon
    d.view("ev-1", H14)
    # No longer a duplicate; late for its hour, still in time for its week.
    assert d.proc.outcomes == {"accepted": 4, "duplicate": 1, "late_hourly": 1}
    assert d.proc.hourly.get("prop-1", H14).views == 1
    assert d.proc.weekly.property_views(W47, "unknown", "prop-1") == 4


# -- lateness ------------------------------------------------------------------------------


def test_late_for_hour_only_counts_weekly_only(make):
    d = make()
    d.view("ev-1", H14, user="inv-1")  # stream time 14:00
    d.view("ev-2", H14 - 61 * MIN, prop="prop-2", user="inv-2")  # 12:59: its hour ended 13:00

    proc = d.proc
    assert proc.outcomes == {"accepted": 2, "late_hourly": 1}
    assert proc.hourly.get("prop-2", H14 - 2 * HOUR_MS) == HourlyCounts()
    assert proc.weekly.property_views(W47, "investor", "prop-2") == 1
    assert proc.weekly.segment_views(W47, "investor") == 2
    assert proc.stream_time == H14
    assert [entry[1] for entry in d.by_user()] == ["inv-1", "inv-2"]
    assert d.pending(DLQ) == []


@pytest.mark.parametrize(
    ("stream_time", "hourly_counted"),
    [
        (H14 - HOUR_MS + 15 * MIN - 1, True),  # 13:14:59.999: the 12:00 hour is still open
        (H14 - HOUR_MS + 15 * MIN, False),  # 13:15:00.000 = end + grace: late
    ],
)
def test_hourly_grace_boundary(make, stream_time, hourly_counted):
    d = make()
    d.view("ev-1", stream_time, prop="prop-0")
    d.view("ev-2", H14 - 2 * HOUR_MS + 30 * MIN)  # 12:30
    assert d.proc.hourly.get("prop-1", H14 - 2 * HOUR_MS).views == (1 if hourly_counted else 0)
    assert d.proc.weekly.property_views(W47, "unknown", "prop-1") == 1
    assert d.proc.outcomes["accepted"] == 2


def test_late_for_both_goes_to_dlq_with_all_headers(make):
    d = make()
    monday_01 = W48 + HOUR_MS  # 2026-11-23T01:00Z = end of week 47 + 1 h grace
    d.view("ev-1", monday_01)
    raw = view_bytes("ev-2", W48 - 30 * MIN, prop="prop-9", user="inv-1")  # Sunday 23:30
    offset = d.send(raw, key=b"prop-9")

    proc = d.proc
    assert proc.outcomes == {"accepted": 1, "rejected:late": 1}
    [dead] = d.pending(DLQ)
    assert (dead.partition, dead.key, dead.value) == (P, b"prop-9", raw)
    assert [name for name, _ in dead.headers] == [
        "dlq.reason", "dlq.detail", "dlq.origin.topic", "dlq.origin.partition", "dlq.origin.offset"
    ]
    h = headers(dead)
    assert h["dlq.reason"] == b"late"
    assert h["dlq.detail"]
    assert h["dlq.origin.topic"] == b"property.views"
    assert h["dlq.origin.partition"] == b"3"
    assert h["dlq.origin.offset"] == str(offset).encode() == b"1"
    assert proc.stream_time == monday_01
    assert proc.weekly.property_views(W47, "investor", "prop-9") == 0
    assert proc.hourly.get("prop-9", W48 - HOUR_MS) == HourlyCounts()
    assert [entry[1] for entry in d.by_user()] == ["user-1"]  # only the accepted view

    # A rejected view is not remembered: sending it again is rejected again, not a duplicate.
    d.send(raw, key=b"prop-9")
    assert proc.outcomes["rejected:late"] == 2
    assert "duplicate" not in proc.outcomes


def test_one_ms_before_the_weekly_grace_ends_the_view_counts_weekly(make):
    d = make()
    d.view("ev-1", W48 + HOUR_MS - 1)  # Monday 00:59:59.999
    d.view("ev-2", W48 - 30 * MIN, user="inv-1")  # Sunday 23:30: late for its hour only
    assert d.proc.outcomes == {"accepted": 2, "late_hourly": 1}
    assert d.proc.weekly.property_views(W47, "investor", "prop-1") == 1
    assert d.pending(DLQ) == []


# -- rejected input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{oops", "malformed_json"),
        (None, "malformed_json"),
        (view_bytes("ev", H14).replace(b'"propertyId"', b'"propertyID"'), "missing_field"),
        (view_bytes("ev", H14, durationMs=True), "bad_type"),
        (view_bytes("ev", H14).replace(b"Z", b""), "bad_timestamp"),
        (view_bytes("ev", H14, version="3.0"), "unsupported_version"),
        (view_bytes("ev", H14, pad="x" * 65536), "oversized"),
        (view_bytes("ev", NOW + 300_001), "future_timestamp"),
    ],
)
def test_invalid_input_goes_to_dlq_with_original_key_and_bytes(make, raw, reason):
    d = make()
    d.view("ev-0", H14)
    d.send(raw, key=b"orig-key")

    [dead] = d.pending(DLQ)
    assert (dead.partition, dead.key, dead.value) == (P, b"orig-key", raw)
    assert headers(dead) | {"dlq.detail": b""} == {
        "dlq.reason": reason.encode(),
        "dlq.detail": b"",
        "dlq.origin.topic": b"property.views",
        "dlq.origin.partition": b"3",
        "dlq.origin.offset": b"1",
    }
    assert headers(dead)["dlq.detail"]
    assert d.proc.outcomes == {"accepted": 1, f"rejected:{reason}": 1}
    assert d.proc.stream_time == H14
    assert d.proc.applied_offset == 1
    assert d.proc.hourly.get("prop-1", H14).views == 1


def test_future_timestamp_does_not_move_stream_time_but_the_tolerance_edge_does(make):
    d = make()
    d.view("ev-1", H14)
    d.view("ev-2", NOW + 300_001)
    assert d.proc.stream_time == H14
    assert d.proc.outcomes["rejected:future_timestamp"] == 1

    d.view("ev-3", NOW + 300_000)
    assert d.proc.stream_time == NOW + 300_000
    assert d.proc.outcomes["accepted"] == 2


def test_dlq_key_may_be_absent(make):
    d = make()
    d.send(b"[]", key=None)
    [dead] = d.pending(DLQ)
    assert (dead.key, dead.value, headers(dead)["dlq.reason"]) == (None, b"[]", b"bad_type")


# -- insights ------------------------------------------------------------------------------


def feed_hour(d: Driver, hour: int, views: int, prop: str, tag: str, users: int = 1000) -> None:
    for i in range(views):
        d.view(f"{tag}-{i}", hour + i * 30_000, prop=prop, user=f"u{i % users}")


def test_spike_once_when_views_reach_20_and_3x_the_24_hour_baseline(make):
    d = make()
    # Hour -25: 100 views (outside the baseline); hours -24 .. -1: 7 views each -> baseline 7.0.
    feed_hour(d, H14 - 25 * HOUR_MS, 100, "prop-s", "old")
    for k in range(24, 0, -1):
        feed_hour(d, H14 - k * HOUR_MS, 7, "prop-s", f"h{k}")
    before = [i["insightId"] for i in insights(d.pending(), "property_hourly_spike")]
    assert before == ["property_hourly_spike:prop-s:2026-11-19T13:00:00Z"]  # hour -25, baseline 0

    for i in range(20):  # 20 views >= 20 but < 3 x 7.0 = 21
        d.view(f"now-{i}", H14 + i * MIN, prop="prop-s", user=f"v{i % 10}")
    assert len(insights(d.pending(), "property_hourly_spike")) == 1

    d.view("now-20", H14 + 20 * MIN, prop="prop-s", user="v0")  # the 21st view
    d.view("now-21", H14 + 21 * MIN, prop="prop-s", user="v1")  # the 22nd: no second insight

    spikes = [r for r in d.pending(INSIGHTS) if b'"type":"property_hourly_spike"' in r.value]
    assert len(spikes) == 2
    rec = spikes[1]
    assert rec.key == b"property_hourly_spike:prop-s:2026-11-20T14:00:00Z"
    assert rec.partition == 0
    assert orjson.loads(rec.value) == {
        "insightId": "property_hourly_spike:prop-s:2026-11-20T14:00:00Z",
        "type": "property_hourly_spike",
        "subject": {"propertyId": "prop-s"},
        "windowStart": "2026-11-20T14:00:00Z",
        "windowEnd": "2026-11-20T15:00:00Z",
        "metrics": {"views": 21, "uniqueUsers": 10, "baseline": 7.0, "ratio": 3.0},
        "detectedAt": "2026-12-01T00:00:00Z",
    }
    assert orjson.loads(spikes[0].value)["metrics"] == {
        "views": 20, "uniqueUsers": 20, "baseline": 0.0, "ratio": None
    }
    assert d.proc.outcomes["insight:property_hourly_spike"] == 2
    assert d.proc.hourly.get("prop-s", H14) == HourlyCounts(22, 10, True)


def test_spike_baseline_memo_is_dropped_when_a_late_view_raises_the_baseline(make):
    d = make()
    # The 24 preceding hours hold 456 views: baseline 19.0, a spike needs 57 views. Hour -1
    # stays under the 20-view minimum, so its own spike check never replaces the memo.
    feed_hour(d, H14 - 24 * HOUR_MS, 20, "prop-s", "h24")
    for k in range(23, 1, -1):
        feed_hour(d, H14 - k * HOUR_MS, 19, "prop-s", f"h{k}")
    feed_hour(d, H14 - HOUR_MS, 18, "prop-s", "h1")
    for i in range(56):  # 10 s apart: stream time H14 + 9:10; the baseline 19.0 is memoised
        d.view(f"now-{i}", H14 + i * 10_000, prop="prop-s", user=f"v{i}")

    def spikes_at_h14() -> int:
        ids = [i["insightId"] for i in insights(d.pending(), "property_hourly_spike")]
        return ids.count("property_hourly_spike:prop-s:2026-11-20T14:00:00Z")

    # A late view for hour -1, within its grace: baseline 457 / 24, threshold 57.125.
    d.view("late", H14 - 30 * MIN, prop="prop-s", user="x")
    d.view("now-56", H14 + 10 * MIN, prop="prop-s", user="y")
    assert d.proc.hourly.get("prop-s", H14).views == 57
    assert spikes_at_h14() == 0  # a stale memo (19.0) would have said 57 >= 57
    d.view("now-57", H14 + 11 * MIN, prop="prop-s", user="z")
    assert spikes_at_h14() == 1


def test_spike_is_not_repeated_after_commit_and_restart(make, open_store):
    d = make()
    feed_hour(d, H14, 20, "prop-s", "a")
    assert len(insights(d.pending(), "property_hourly_spike")) == 1
    d.commit()
    d = reopen(d, open_store)
    feed_hour(d, H14 + 15 * MIN, 30, "prop-s", "b")
    assert insights(d.pending(), "property_hourly_spike") == []
    assert d.proc.hourly.get("prop-s", H14).views == 50


def test_spike_needs_the_minimum_even_with_a_zero_baseline(make):
    d = make()
    feed_hour(d, H14, 19, "prop-s", "a")
    assert insights(d.pending()) == []
    # Other properties and hours do not add up.
    feed_hour(d, H14, 19, "prop-t", "b")
    feed_hour(d, H14 + HOUR_MS, 19, "prop-s", "c")
    assert insights(d.pending()) == []


def test_spike_thresholds_come_from_settings(make):
    d = make(cfg=config(spike_min_views=3, spike_ratio=2.0))
    feed_hour(d, H14 - HOUR_MS, 24, "prop-s", "a")  # baseline 1.0
    assert [i["windowStart"] for i in insights(d.pending())] == ["2026-11-20T13:00:00Z"]
    feed_hour(d, H14, 3, "prop-s", "b")
    spikes = insights(d.pending())
    assert spikes[1]["metrics"] == {"views": 3, "uniqueUsers": 3, "baseline": 1.0, "ratio": 3.0}


def test_segment_property_trend_once_with_previous_views(make):
    d = make()
    last_week = W47 + 2 * 24 * HOUR_MS + 10 * HOUR_MS  # Wednesday 2026-11-18T10:00Z
    this_week = W48 + 2 * 24 * HOUR_MS + 10 * HOUR_MS  # Wednesday 2026-11-25T10:00Z
    for i in range(30):
        d.view(f"lw-{i}", last_week + i * MIN, prop="prop-t", user=f"inv-{i % 20}")
    for i in range(59):  # 59 < 2 x 30
        d.view(f"tw-{i}", this_week + i * MIN, prop="prop-t", user=f"inv-{i % 20}")
    assert insights(d.pending(), "segment_property_trend") == []

    d.view("tw-59", this_week + 59 * MIN, prop="prop-t", user="inv-0")  # 60 = 2 x 30
    d.view("tw-60", this_week + 60 * MIN, prop="prop-t", user="inv-1")

    trends = [r for r in d.pending(INSIGHTS) if b"segment_property_trend" in r.value]
    assert len(trends) == 1
    assert trends[0].key == b"segment_property_trend:investor:prop-t:2026-11-23T00:00:00Z"
    assert orjson.loads(trends[0].value) == {
        "insightId": "segment_property_trend:investor:prop-t:2026-11-23T00:00:00Z",
        "type": "segment_property_trend",
        "subject": {"segment": "investor", "propertyId": "prop-t"},
        "windowStart": "2026-11-23T00:00:00Z",
        "windowEnd": "2026-11-30T00:00:00Z",
        "metrics": {"views": 60, "previousViews": 30, "ratio": 2.0},
        "detectedAt": "2026-12-01T00:00:00Z",
    }
    assert d.proc.weekly.property_views(W48, "investor", "prop-t") == 61


def test_segment_trend_with_no_previous_week_and_per_segment(make):
    d = make()
    this_week = W48 + 10 * HOUR_MS
    for i in range(49):
        d.view(f"r-{i}", this_week + i * MIN, prop="prop-t", user=f"rent-{i % 20}")
    for i in range(55):  # the investors' count is separate from the renters'
        d.view(f"i-{i}", this_week + i * MIN, prop="prop-u", user=f"inv-{i % 20}")
    d.view("r-49", this_week + 50 * MIN, prop="prop-t", user="rent-0")
    d.view("r-50", this_week + 51 * MIN, prop="prop-t", user="rent-1")

    trends = insights(d.pending(), "segment_property_trend")
    assert [(t["insightId"], t["metrics"]) for t in trends] == [
        (
            "segment_property_trend:investor:prop-u:2026-11-23T00:00:00Z",
            {"views": 50, "previousViews": 0, "ratio": None},
        ),
        (
            "segment_property_trend:renter:prop-t:2026-11-23T00:00:00Z",
            {"views": 50, "previousViews": 0, "ratio": None},
        ),
    ]


def test_segment_trend_not_repeated_after_restart(make, open_store):
    d = make()
    for i in range(50):
        d.view(f"a-{i}", W48 + i * MIN, prop="prop-t", user="inv-1")
    assert len(insights(d.pending(), "segment_property_trend")) == 1
    d.commit()
    d = reopen(d, open_store)
    for i in range(60):
        d.view(f"b-{i}", W48 + 2 * HOUR_MS + i * MIN, prop="prop-t", user="inv-1")
    assert insights(d.pending(), "segment_property_trend") == []


# -- commit, replay, restart ---------------------------------------------------------------


def test_before_commit_false_when_nothing_changed(make):
    d = make()
    assert d.proc.before_commit(NOW) is False
    assert d.commit(publish=True) is False
    assert d.proc.store.pending == {}

    d.view("ev-1", H14)
    assert d.commit() is True
    assert d.proc.before_commit(NOW) is False
    assert d.commit(publish=True) is False


def test_before_commit_true_for_a_duplicate_alone(make):
    d = make()
    d.view("ev-1", H14)
    d.commit()
    d.view("ev-1", H14)  # nothing to output, but the input offset moved
    assert d.pending() == []
    assert d.proc.before_commit(NOW) is True


def test_before_commit_stages_applied_offset_and_stream_time(make):
    d = make()
    d.view("ev-1", H14 + 5 * MIN)
    d.send(b"junk")
    assert d.proc.before_commit(NOW) is True
    assert d.proc.store.pending[APPLIED_KEY] == b"1"
    assert d.proc.store.pending[STREAM_TIME_KEY] == b"%d" % (H14 + 5 * MIN)


def test_partials_published_when_punctuated(make):
    d = make()
    d.view("ev-1", H14, prop="prop-a", user="inv-1")
    d.view("ev-2", H14 + MIN, prop="prop-b", user="inv-2")
    d.view("ev-3", H14 + 2 * MIN, prop="prop-b", user="rent-1")
    d.view("ev-4", H14 + 3 * MIN, prop="prop-b", user="inv-1")

    assert d.commit(publish=False)
    assert [r for r in d.published if r.topic == PARTIALS] == []

    d.view("ev-5", H14 + 4 * MIN, prop="prop-c", user="inv-3")
    assert d.commit(publish=True)
    partials = [
        (r.partition, r.key, orjson.loads(r.value)) for r in d.published if r.topic == PARTIALS
    ]
    assert partials == [
        (0, partial_key(VIEWS, P, W47, "investor"),
         {"views": 4, "top": [["prop-b", 2], ["prop-a", 1], ["prop-c", 1]]}),
        (0, partial_key(VIEWS, P, W47, "renter"), {"views": 1, "top": [["prop-b", 1]]}),
        # what the shares reflect: the partition's input up to its applied offset
        (0, position_key(P), {"offset": d.proc.applied_offset}),
    ]


def test_the_shares_are_punctuated_every_partials_publish_seconds(make):
    d = make(cfg=config(partials_publish_seconds=2.0))
    d.view("ev-1", H14, prop="prop-a", user="inv-1")
    assert d.proc.punctuate(NOW) is True  # due at once
    d.view("ev-2", H14, prop="prop-a", user="inv-1")
    assert d.proc.punctuate(NOW + 1999) is False  # not due yet: nothing written
    assert d.proc.punctuate(NOW + 2000) is True
    views = [orjson.loads(r.value)["views"] for r in d.pending(PARTIALS) if r.key != position_key(P)]
    assert views == [1, 2]
    assert d.proc.punctuate(NOW + 4000) is False  # due, nothing changed: nothing written


def test_position_published_once_per_move(make):
    d = make()
    d.view("ev-1", H14, prop="prop-a", user="inv-1")
    assert d.commit(publish=True)
    first = [r for r in d.published if r.key == position_key(P)]
    assert [orjson.loads(r.value) for r in first] == [{"offset": d.proc.applied_offset}]
    assert d.commit(publish=True) is False  # nothing moved: nothing sent
    d.view("ev-2", H14 + MIN, prop="prop-a", user="inv-1")
    assert d.commit(publish=True)
    offsets = [orjson.loads(r.value)["offset"] for r in d.published if r.key == position_key(P)]
    assert offsets == [d.proc.applied_offset - 1, d.proc.applied_offset]


def test_replayed_offsets_are_skipped(make):
    d = make()
    for i in range(5):
        d.view(f"ev-{i}", H14 + i * MIN, user=f"inv-{i}")
    d.commit()

    raw3 = view_bytes("ev-3", H14 + 3 * MIN, user="inv-3")
    d.proc.process(3, b"prop-1", raw3, NOW)
    d.proc.process(4, b"prop-1", b"anything at all", NOW)

    assert d.proc.outcomes["replayed"] == 2
    assert d.proc.outcomes["accepted"] == 5
    assert d.pending() == []
    assert d.proc.hourly.get("prop-1", H14) == HourlyCounts(5, 5)
    assert d.proc.before_commit(NOW) is False


def test_restart_resumes_with_applied_offset_and_stream_time(make, open_store):
    d = make()
    d.view("ev-1", H14 + 40 * MIN)
    d.view("ev-2", H14 + 10 * MIN)
    d.send(b"junk")
    d.commit()

    d = reopen(d, open_store)

    assert d.proc.applied_offset == 2
    assert d.proc.stream_time == H14 + 40 * MIN
    assert d.proc.hourly.get("prop-1", H14) == HourlyCounts(2, 1)
    # Stream time carried over still decides lateness: 13:20 is late for its hour.
    d.view("ev-3", H14 - 40 * MIN)
    assert d.proc.outcomes == {"accepted": 1, "late_hourly": 1}


def test_restart_without_commit_resumes_at_the_last_commit(make, open_store):
    d = make()
    d.view("ev-1", H14)
    d.commit()
    d.view("ev-2", H14 + 30 * MIN)  # processed, never committed
    d.crash()

    d = reopen(d, open_store)

    assert d.proc.applied_offset == 0
    assert d.proc.stream_time == H14
    assert d.proc.hourly.get("prop-1", H14).views == 1


def test_restart_republishes_live_partials(make, open_store):
    d = make()
    d.view("ev-1", H14, user="inv-1")
    d.commit(publish=True)
    first = [r for r in d.published if r.topic == PARTIALS]

    d = reopen(d, open_store)

    assert d.commit(publish=True)
    assert [r for r in d.published if r.topic == PARTIALS] == first


def _workload() -> list[tuple[bytes | None, bytes | None]]:
    """A mixed stream: accepted, duplicates, late, rejected, and enough for both insights."""
    out: list[tuple[bytes | None, bytes | None]] = []
    for i in range(120):
        if i % 2:  # 60 views of prop-hot, all by investors: a spike and a segment trend
            prop, user = "prop-hot", f"inv-{i % 7}"
        else:
            prop, user = f"prop-{i % 5}", f"rent-{i % 4}" if i % 3 else f"inv-{i % 6}"
        raw = view_bytes(f"w-{i}", W48 + 2 * HOUR_MS + i * MIN, prop, user)
        out.append((prop.encode(), raw))
        if i % 9 == 0:  # 14 duplicates
            out.append((prop.encode(), raw))
        if i % 11 == 0:  # 11 malformed
            out.append((b"x", b"{broken"))
        if i == 40:  # late for hour and week (2), late for the hour only (1)
            late_1 = view_bytes("late-1", W48 - 2 * HOUR_MS, "prop-late", "inv-1")
            out.append((b"prop-late", late_1))
            out.append((b"prop-old", view_bytes("late-2", W47 - 2 * HOUR_MS, "prop-old", "inv-1")))
            out.append((b"prop-late", view_bytes("late-3", W48 + HOUR_MS, "prop-late", "inv-1")))
    return out


def test_crash_and_replay_give_the_counts_and_outputs_of_an_uninterrupted_run(make, open_store):
    work = _workload()

    # One uninterrupted run, on its own store, committing every 10 offsets.
    straight = make(store=open_store("straight"))
    for key, value in work:
        straight.send(value, key)
        if straight.next_offset % 10 == 0:
            straight.commit(publish=False)
    straight.commit(publish=False)

    # The same input, crashing twice between commits; after each crash the consumer is
    # rewound to offset 0 and the partition reopened from its files.
    d = make()
    crash_after = {33, 101}
    offset = 0
    while offset < len(work):
        key, value = work[offset]
        d.proc.process(offset, key, value, NOW)
        if offset in crash_after:
            crash_after.discard(offset)
            d.crash()
            published = d.published
            d = reopen(d, open_store)
            d.published = published
            offset = 0
            continue
        if (offset + 1) % 10 == 0:
            d.commit(publish=False)
        offset += 1
    d.commit(publish=False)

    # The last instance replayed offsets 0..99 (committed through 99 before the second crash).
    assert d.proc.outcomes["replayed"] == 100

    def non_partials(recs):
        return [r for r in recs if r.topic != PARTIALS]

    assert non_partials(d.published) == non_partials(straight.published)
    hours = [W48 + 2 * HOUR_MS + k * HOUR_MS for k in range(3)]
    for prop in ("prop-hot", "prop-0", "prop-1", "prop-late"):
        for hour in hours:
            assert d.proc.hourly.get(prop, hour) == straight.proc.hourly.get(prop, hour)
        for segment in ("investor", "renter"):
            assert d.proc.weekly.property_views(W48, segment, prop) == (
                straight.proc.weekly.property_views(W48, segment, prop)
            )
    assert d.proc.stream_time == straight.proc.stream_time == W48 + 2 * HOUR_MS + 119 * MIN
    assert d.proc.applied_offset == straight.proc.applied_offset == len(work) - 1

    # What the uninterrupted run itself produced, exactly.
    assert straight.proc.outcomes == {
        "accepted": 121,
        "late_hourly": 1,
        "duplicate": 14,
        "rejected:malformed_json": 11,
        "rejected:late": 2,
        "insight:property_hourly_spike": 2,
        "insight:segment_property_trend": 1,
    }
    # The 50th investor view of prop-hot (i = 99) is also its 20th view of hour 03:00: the
    # hourly spike is detected first, then the weekly trend, from the same view.
    assert [(i["insightId"], i["metrics"]) for i in insights(straight.published)] == [
        (
            "property_hourly_spike:prop-hot:2026-11-23T02:00:00Z",
            {"views": 20, "uniqueUsers": 7, "baseline": 0.0, "ratio": None},
        ),
        (
            "property_hourly_spike:prop-hot:2026-11-23T03:00:00Z",
            {"views": 20, "uniqueUsers": 7, "baseline": 1.25, "ratio": 16.0},
        ),
        (
            "segment_property_trend:investor:prop-hot:2026-11-23T00:00:00Z",
            {"views": 50, "previousViews": 0, "ratio": None},
        ),
    ]
    assert straight.proc.hourly.get("prop-hot", hours[0]) == HourlyCounts(30, 7, True)
    assert straight.proc.weekly.property_views(W48, "investor", "prop-hot") == 60
    assert straight.proc.weekly.property_views(W48, "investor", "prop-late") == 1
    assert straight.proc.hourly.get("prop-late", hours[0]) == HourlyCounts()
    sent = [
        entry for r in straight.published if r.topic == REPARTITION
        for entry in by_user.decode(r.key, r.value)
    ]
    assert set(sent) == (  # prop-hot's inv-0..6; the others' rent-0, rent-2 and inv-0
        {(f"inv-{k}", W48, "investor") for k in range(7)}
        | {("rent-0", W48, "renter"), ("rent-2", W48, "renter")}
    )


# -- retention -----------------------------------------------------------------------------


def test_hourly_windows_expire_48_hours_behind_stream_time(make):
    d = make()
    ten, eleven = parse_iso("2026-11-18T10:00:00Z"), parse_iso("2026-11-18T11:00:00Z")
    d.view("ev-a", ten + 5 * MIN, user="inv-1")
    d.view("ev-b", eleven + 5 * MIN, user="inv-1")

    d.commit()
    # Retention runs at each commit (never earlier than a window's lateness allows).
    d.view("ev-c", parse_iso("2026-11-20T11:30:00Z"))
    d.commit()
    assert d.proc.hourly.get("prop-1", ten) == HourlyCounts()
    assert d.proc.hourly.get("prop-1", eleven) == HourlyCounts(1, 1)

    d.view("ev-d", parse_iso("2026-11-20T11:59:59.999Z"))
    d.commit()
    assert d.proc.hourly.get("prop-1", eleven) == HourlyCounts(1, 1)

    d.view("ev-e", parse_iso("2026-11-20T12:00:00Z"))
    assert d.proc.hourly.get("prop-1", eleven) == HourlyCounts(1, 1)  # until the commit
    d.commit()
    assert d.proc.hourly.get("prop-1", eleven) == HourlyCounts()
    # Weekly counts are not touched by hourly retention.
    assert d.proc.weekly.property_views(W47, "investor", "prop-1") == 2

    d.commit()
    assert d.proc.store.committed().get(window_key(COUNTS, eleven, "prop-1")) is None


def test_weekly_windows_expire_after_five_weeks_with_a_partial_tombstone(make):
    d = make()
    d.now_ms = parse_iso("2027-02-01T00:00:00Z")  # the wall clock is past every view here
    d.view("ev-a", W47 + 10 * HOUR_MS, user="inv-1")
    d.commit(publish=True)

    d.view("ev-b", W47 + 5 * WEEK_MS + 10 * HOUR_MS)  # cut-off is W47: kept
    assert d.proc.weekly.property_views(W47, "investor", "prop-1") == 1
    assert d.pending(PARTIALS) == []

    d.view("ev-c", W47 + 6 * WEEK_MS)  # cut-off is W48: W47 goes, at the commit
    assert d.proc.outcomes == {"accepted": 3}
    assert d.proc.weekly.property_views(W47, "investor", "prop-1") == 1

    d.commit(publish=True)
    assert d.proc.weekly.property_views(W47, "investor", "prop-1") == 0
    assert d.proc.weekly.segment_views(W47, "investor") == 0
    published = published_partials(d)
    w52, w53 = W47 + 5 * WEEK_MS, W47 + 6 * WEEK_MS
    assert published == [
        (partial_key(VIEWS, P, W47, "investor"), {"views": 1, "top": [["prop-1", 1]]}),
        (partial_key(VIEWS, P, W47, "investor"), None),  # the expired week is never republished
        (partial_key(VIEWS, P, w52, "unknown"), {"views": 1, "top": [["prop-1", 1]]}),
        (partial_key(VIEWS, P, w53, "unknown"), {"views": 1, "top": [["prop-1", 1]]}),
    ]


def test_a_week_expiring_before_its_first_publish_is_only_tombstoned(make):
    d = make()
    d.now_ms = parse_iso("2027-02-01T00:00:00Z")
    d.view("ev-a", W47 + 10 * HOUR_MS, user="inv-1")
    d.commit(publish=False)  # counted, share not published yet
    d.view("ev-b", W47 + 6 * WEEK_MS)
    d.commit(publish=True)

    published = published_partials(d)
    assert published == [
        (partial_key(VIEWS, P, W47, "investor"), None),
        (partial_key(VIEWS, P, W47 + 6 * WEEK_MS, "unknown"), {"views": 1, "top": [["prop-1", 1]]}),
    ]


# -- hostile ids and keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "prop", "user", "expected"),
    [
        (b"prop-9", "prop-9", "user\x1fx", "bad_id"),
        (b"a\x1fb", "a\x1fb", "user-1", "bad_id"),
        (b"prop-9", "prop-9", "", "bad_id"),
        (b"prop-8", "prop-9", "user-1", "key_mismatch"),
        (None, "prop-9", "user-1", "key_mismatch"),
    ],
)
def test_bad_ids_and_foreign_keys_go_to_the_dlq_and_touch_no_state(make, key, prop, user, expected):
    d = make()
    raw = view_bytes("ev-x", NOW - HOUR_MS, prop=prop, user=user)
    offset = d.send(raw, key=key)
    assert d.proc.outcomes == {f"rejected:{expected}": 1}
    [dead] = d.pending(DLQ)
    assert (dead.key, dead.value) == (key, raw)
    assert headers(dead)["dlq.reason"] == expected.encode()
    assert headers(dead)["dlq.origin.offset"] == str(offset).encode()
    assert d.proc.hourly.get(prop, hour_start(NOW - HOUR_MS)) == HourlyCounts()
    assert d.by_user() == []


def test_insight_ids_percent_encode_their_id_components(make):
    d = make()
    prop = "a:b/c %物"
    hour = hour_start(NOW) - HOUR_MS
    for i in range(20):
        d.view(f"ev-{i}", hour + i * MIN, prop=prop, user=f"inv-{i}")
    d.commit()
    [spike] = insights(d.published, "property_hourly_spike")
    assert spike["insightId"] == (
        f"property_hourly_spike:a%3Ab%2Fc%20%25%E7%89%A9:{iso_ms(hour)}"
    )
    assert spike["subject"] == {"propertyId": prop}
