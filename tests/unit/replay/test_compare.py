"""What diff compares (the windows both apps cover, once final in both) and what it reports."""

from __future__ import annotations

from app.readmodels.partials import SegmentWeek
from app.replay.compare import (
    BEFORE_FROM,
    CHANGED,
    EXPIRED,
    ONLY_LIVE,
    ONLY_SHADOW,
    OPEN,
    WARM_UP,
    Coverage,
    Limits,
    compare,
    first_hour,
    first_week,
)
from app.replay.report import changes, text_lines
from app.replay.snapshot import Snapshot
from app.engine.partitioner import key_partition
from app.windows import HOUR_MS, WEEK_MS, iso_ms, parse_iso

LIMITS = Limits(hourly_grace_ms=15 * 60_000, weekly_grace_ms=HOUR_MS,
                hourly_retention_ms=48 * HOUR_MS, weekly_retention_ms=5 * WEEK_MS,
                baseline_hours=24)
MONDAY = parse_iso("2026-11-23T00:00:00Z")
FROM = MONDAY - 22 * HOUR_MS + 7 * 60_000  # Sunday 02:07
PARTS = 2


def prop_in(partition: int) -> str:
    return next(f"p{i}" for i in range(1000) if key_partition(f"p{i}".encode(), PARTS) == partition)


def snap(applied: dict[int, int], stream_time: dict[int, int], **kw) -> Snapshot:
    return Snapshot("x", applied=applied, stream_time=stream_time, **kw)


def spike(prop: str, hour: int, views: int) -> dict:
    return {"insightId": f"property_hourly_spike:{prop}:{iso_ms(hour)}",
            "type": "property_hourly_spike", "subject": {"propertyId": prop},
            "windowStart": iso_ms(hour), "windowEnd": iso_ms(hour + HOUR_MS),
            "metrics": {"views": views}, "detectedAt": "2026-11-29T00:00:00Z"}


def test_first_covered_windows():
    assert first_hour(FROM) == MONDAY - 21 * HOUR_MS
    assert first_hour(MONDAY) == MONDAY
    assert first_week(FROM) == MONDAY
    assert first_week(MONDAY) == MONDAY


def test_same_input_makes_every_covered_window_final():
    now = MONDAY + 20 * HOUR_MS
    same = Coverage(FROM, PARTS, snap({0: 9, 1: 4}, {0: now, 1: now}),
                    snap({0: 9, 1: 4}, {0: now, 1: now}), LIMITS, LIMITS)
    assert same.hour(0, MONDAY + 19 * HOUR_MS) is None  # the newest hour: open, but same input
    assert same.hour(0, MONDAY - 22 * HOUR_MS) == BEFORE_FROM
    assert same.week(MONDAY) is None
    assert same.week(MONDAY - WEEK_MS) == BEFORE_FROM


def test_with_different_input_only_closed_windows_are_final():
    now = MONDAY + 20 * HOUR_MS
    cov = Coverage(FROM, PARTS, snap({0: 9, 1: 4}, {0: now, 1: now}),
                   snap({0: 7, 1: 4}, {0: now - 3 * HOUR_MS, 1: now}), LIMITS, LIMITS)
    behind = now - 3 * HOUR_MS
    assert cov.hour(0, behind - HOUR_MS - 15 * 60_000) is None  # end + grace == settled: closed
    assert cov.hour(0, behind - HOUR_MS) == OPEN
    assert cov.hour(1, now - HOUR_MS) is None  # partition 1 took the same input
    assert cov.week(MONDAY) == OPEN  # partition 0 has not closed the week


def test_hours_past_retention_in_either_app_are_not_compared():
    late = MONDAY + 80 * HOUR_MS
    cov = Coverage(FROM, PARTS, snap({0: 1}, {0: late}), snap({0: 1}, {0: MONDAY}), LIMITS, LIMITS)
    assert cov.hour(0, late - 48 * HOUR_MS) == EXPIRED
    assert cov.hour(0, late - 47 * HOUR_MS) is None


def test_insights_need_their_baseline_or_previous_week_inside_the_replay():
    now = MONDAY + 8 * WEEK_MS
    p = prop_in(0)
    cov = Coverage(FROM, PARTS, snap({0: 1, 1: 1}, {0: now, 1: now}),
                   snap({0: 1, 1: 1}, {0: now, 1: now}), LIMITS, LIMITS)
    hour0 = first_hour(FROM)
    assert cov.insight(spike(p, hour0 + 23 * HOUR_MS, 30)) == WARM_UP
    assert cov.insight(spike(p, hour0 + 24 * HOUR_MS, 30)) is None
    trend = {"type": "segment_property_trend", "subject": {"segment": "a", "propertyId": p},
             "windowStart": iso_ms(MONDAY)}
    assert cov.insight(trend) == WARM_UP
    assert cov.insight({**trend, "windowStart": iso_ms(MONDAY + WEEK_MS)}) is None
    assert cov.insight({"type": "x"}) == "unreadable"


def test_a_rented_property_demand_is_compared_from_the_first_whole_hour():
    now = MONDAY + 8 * WEEK_MS
    p = prop_in(1)
    cov = Coverage(FROM, PARTS, snap({0: 1, 1: 1}, {0: now, 1: now}),
                   snap({0: 1, 1: 1}, {0: now, 1: now}), LIMITS, LIMITS)
    hour0 = first_hour(FROM)
    demand = {"type": "rented_property_demand", "subject": {"propertyId": p},
              "windowStart": iso_ms(hour0)}
    assert cov.insight(demand) is None
    assert cov.insight({**demand, "windowStart": iso_ms(hour0 - HOUR_MS)}) == WARM_UP
    behind = Coverage(FROM, PARTS, snap({0: 1, 1: 5}, {0: now, 1: now}),
                      snap({0: 1, 1: 4}, {0: now, 1: hour0 + HOUR_MS}), LIMITS, LIMITS)
    assert behind.insight(demand) == OPEN  # partition 1 has not closed the hour


def test_compare_reports_each_kind_of_difference():
    p0, p1 = prop_in(0), prop_in(1)
    h = MONDAY + 5 * HOUR_MS
    now = h + 40 * HOUR_MS  # every hour of the test still held
    live = snap({0: 5, 1: 5}, {0: now, 1: now},
                hourly={0: {(p0, h): (4, 2), (p0, MONDAY - 30 * HOUR_MS): (1, 1)},
                        1: {(p1, h): (3, 3)}},
                weekly={("a", MONDAY): SegmentWeek(7, 3, [[p0, 4], [p1, 3]])},
                insights={i["insightId"]: i for i in (spike(p0, h + 24 * HOUR_MS, 21),
                                                      spike(p1, h + 30 * HOUR_MS, 40))})
    shadow = snap({0: 5, 1: 5}, {0: now, 1: now},
                  hourly={0: {(p0, h): (4, 2)}, 1: {(p1, h): (3, 2)}},
                  weekly={("a", MONDAY): SegmentWeek(7, 3, [[p0, 4], [p1, 3]])},
                  insights={i["insightId"]: i for i in (spike(p0, h + 24 * HOUR_MS, 20),
                                                        spike(p1, h + 31 * HOUR_MS, 22))})
    result = compare(live, shadow, Coverage(FROM, PARTS, live, shadow, LIMITS, LIMITS))
    got = {(d.kind, d.change, d.key) for d in result.differences}
    assert got == {
        ("hourly", CHANGED, f"{p1} {iso_ms(h)}"),
        ("insight", CHANGED, f"property_hourly_spike:{p0}:{iso_ms(h + 24 * HOUR_MS)}"),
        ("insight", ONLY_LIVE, f"property_hourly_spike:{p1}:{iso_ms(h + 30 * HOUR_MS)}"),
        ("insight", ONLY_SHADOW, f"property_hourly_spike:{p1}:{iso_ms(h + 31 * HOUR_MS)}"),
    }
    assert result.compared == {"hourly": 2, "weekly": 1, "insight": 3}
    assert result.skipped == {f"hourly {BEFORE_FROM}": 1}
    lines = text_lines(result, ["header"], limit=2)
    assert lines[0] == "header" and lines[-1] == "4 differences"
    assert "... and 2 more (--limit, or --json for all)" in lines


def test_unique_users_are_left_out_while_a_unique_users_stage_is_behind():
    now = MONDAY + 3 * WEEK_MS
    live = snap({0: 1, 1: 1}, {0: now, 1: now}, weekly={("a", MONDAY): SegmentWeek(7, 3, [])},
                segments_behind=4)
    shadow = snap({0: 1, 1: 1}, {0: now, 1: now}, weekly={("a", MONDAY): SegmentWeek(7, 2, [])})
    result = compare(live, shadow, Coverage(FROM, PARTS, live, shadow, LIMITS, LIMITS))
    assert result.differences == [] and result.compared["weekly"] == 1
    assert any("unique users not compared" in note for note in result.notes)


def test_changes_name_the_fields_that_differ():
    assert changes({"metrics": {"views": 21, "ratio": 3.0}, "type": "t"},
                   {"metrics": {"views": 20, "ratio": 2.86}, "type": "t"}) == [
        "metrics.ratio 3.0 -> 2.86", "metrics.views 21 -> 20"]
