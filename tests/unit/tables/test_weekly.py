"""weekly_segment_patterns: views per (week, segment, property), segment totals, top 10."""

from __future__ import annotations

from app.tables.weekly import (
    SegmentPropertyCounts,
    TopProperties,
    WeeklySegmentPatterns,
    merge_top,
)
from tests.unit.stores import commit

WEEK = 604_800_000
W47 = 1_794_787_200_000  # Monday 2026-11-16


def add(weekly, week, segment, prop, times):
    counts = None
    for _ in range(times):
        counts = weekly.add_view(week, segment, prop)
    return counts


def test_counts_per_property_and_segment(store):
    weekly = WeeklySegmentPatterns(store)
    assert add(weekly, W47, "investor", "prop-1", 3) == SegmentPropertyCounts(3, False)
    add(weekly, W47, "investor", "prop-2", 2)
    add(weekly, W47, "renter", "prop-1", 4)
    add(weekly, W47 + WEEK, "investor", "prop-1", 1)

    assert weekly.property_views(W47, "investor", "prop-1") == 3
    assert weekly.property_views(W47, "investor", "prop-2") == 2
    assert weekly.property_views(W47, "renter", "prop-1") == 4
    assert weekly.property_views(W47, "renter", "prop-2") == 0
    assert weekly.segment_views(W47, "investor") == 5
    assert weekly.segment_views(W47, "renter") == 4
    assert weekly.segment_views(W47 + WEEK, "investor") == 1
    assert weekly.segment_views(W47 - WEEK, "investor") == 0
    assert sorted(weekly.segment_weeks()) == [
        (W47, "investor"), (W47, "renter"), (W47 + WEEK, "investor")
    ]


def test_top_properties_views_desc_then_property_id_asc(store):
    weekly = WeeklySegmentPatterns(store)
    add(weekly, W47, "investor", "prop-b", 5)
    add(weekly, W47, "investor", "prop-c", 7)
    add(weekly, W47, "investor", "prop-a", 5)
    add(weekly, W47, "investor", "prop-10", 5)
    add(weekly, W47, "investor", "prop-d", 1)
    add(weekly, W47, "renter", "prop-z", 99)  # another segment
    add(weekly, W47 + WEEK, "investor", "prop-y", 99)  # another week

    assert weekly.top_properties(W47, "investor") == [
        ["prop-c", 7], ["prop-10", 5], ["prop-a", 5], ["prop-b", 5], ["prop-d", 1]
    ]


def test_top_properties_keeps_ten(store):
    weekly = WeeklySegmentPatterns(store)
    for i in range(12):
        add(weekly, W47, "investor", f"p{i:02d}", 1 + i % 4)  # views 1,2,3,4,1,2,...

    assert weekly.top_properties(W47, "investor") == [
        ["p03", 4], ["p07", 4], ["p11", 4],
        ["p02", 3], ["p06", 3], ["p10", 3],
        ["p01", 2], ["p05", 2], ["p09", 2],
        ["p00", 1],
    ]


def test_top_properties_do_not_mix_segments_sharing_a_prefix(store):
    weekly = WeeklySegmentPatterns(store)
    add(weekly, W47, "inv", "prop-1", 1)
    add(weekly, W47, "investor", "prop-2", 3)

    assert weekly.top_properties(W47, "inv") == [["prop-1", 1]]
    assert weekly.top_properties(W47, "investor") == [["prop-2", 3]]
    assert weekly.top_properties(W47, "nobody") == []


def test_top_properties_over_committed_and_pending_rows(store):
    weekly = WeeklySegmentPatterns(store)
    add(weekly, W47, "investor", "prop-a", 2)
    add(weekly, W47, "investor", "prop-b", 1)
    commit(store, 3)
    add(weekly, W47, "investor", "prop-b", 2)  # pending overwrite: 3 views
    add(weekly, W47, "investor", "prop-c", 1)  # pending only

    assert weekly.top_properties(W47, "investor") == [["prop-b", 3], ["prop-a", 2], ["prop-c", 1]]
    assert WeeklySegmentPatterns(store.committed()).top_properties(W47, "investor") == [
        ["prop-a", 2], ["prop-b", 1]
    ]


def test_mark_trend_emitted_persists_and_counting_continues(store):
    weekly = WeeklySegmentPatterns(store)
    counts = add(weekly, W47, "investor", "prop-1", 2)
    weekly.mark_trend_emitted(W47, "investor", "prop-1", counts)

    assert weekly.add_view(W47, "investor", "prop-1") == SegmentPropertyCounts(3, True)
    assert SegmentPropertyCounts.from_bytes(None) == SegmentPropertyCounts(0, False)


def test_expire_before_drops_only_older_weeks(store):
    weekly = WeeklySegmentPatterns(store)
    add(weekly, W47 - WEEK, "investor", "prop-1", 2)
    add(weekly, W47 - WEEK, "renter", "prop-2", 1)
    add(weekly, W47, "investor", "prop-1", 3)
    commit(store, None)

    dropped = weekly.expire_before(W47)

    assert sorted(dropped) == [(W47 - WEEK, "investor"), (W47 - WEEK, "renter")]
    assert weekly.property_views(W47 - WEEK, "investor", "prop-1") == 0
    assert weekly.segment_views(W47 - WEEK, "renter") == 0
    assert weekly.top_properties(W47 - WEEK, "investor") == []
    assert weekly.property_views(W47, "investor", "prop-1") == 3
    assert weekly.segment_views(W47, "investor") == 3
    assert weekly.segment_weeks() == [(W47, "investor")]
    assert weekly.expire_before(W47) == []


def test_merge_top_across_partitions():
    partition_0 = [["prop-c", 9], ["prop-a", 4], ["prop-e", 1]]
    partition_1 = [["prop-b", 9], ["prop-d", 4]]
    partition_2: list[list] = []

    assert merge_top([partition_0, partition_1, partition_2]) == [
        ["prop-b", 9], ["prop-c", 9], ["prop-a", 4], ["prop-d", 4], ["prop-e", 1]
    ]
    top_3 = merge_top([partition_0, partition_1], n=3)
    assert top_3 == [["prop-b", 9], ["prop-c", 9], ["prop-a", 4]]
    assert merge_top([]) == []


def test_merge_top_keeps_ten_of_many_partitions():
    tops = [[[f"p{part}-{i}", 10 * part + i] for i in range(10)] for part in range(3)]
    merged = merge_top(tops)
    assert merged == [[f"p2-{i}", 20 + i] for i in range(9, -1, -1)]


def test_incremental_top_equals_a_full_sort_after_every_view():
    import random

    rng = random.Random(5)
    top = TopProperties(n=10)
    counts: dict[str, int] = {}
    for _ in range(3000):
        prop = f"p{int(rng.paretovariate(1.1)) % 60:02d}"
        counts[prop] = counts.get(prop, 0) + 1
        top.update(prop, counts[prop])
        expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        assert top.ranked() == [[p, v] for p, v in expected]


def test_top_lists_are_rebuilt_from_the_store_when_a_partition_opens(store):
    weekly = WeeklySegmentPatterns(store)
    for i in range(15):
        add(weekly, W47, "investor", f"p{i:02d}", i + 1)
    commit(store, None)
    reopened = WeeklySegmentPatterns(store)
    assert reopened.top_properties(W47, "investor") == weekly.top_properties(W47, "investor")
    assert reopened.top_properties(W47, "investor")[0] == ["p14", 15]


def test_a_partition_holding_ids_with_any_character_reopens(open_store):
    """Regression: a propertyId or segment holding 0x1F (the old key separator) once made
    reopening its partition raise, and the worker exit, on every restart."""
    store = open_store("p007")
    weekly = WeeklySegmentPatterns(store)
    add(weekly, W47, "investor", "a\x1fb", 2)
    add(weekly, W47, "s\x1fx", "prop-1", 1)
    add(weekly, W47 - WEEK, "\x00", "\x00\x01", 1)
    commit(store, None)
    store.close()

    reopened = WeeklySegmentPatterns(open_store("p007"))

    assert reopened.top_properties(W47, "investor") == [["a\x1fb", 2]]
    assert reopened.top_properties(W47, "s\x1fx") == [["prop-1", 1]]
    assert sorted(reopened.segment_weeks()) == [
        (W47 - WEEK, "\x00"), (W47, "investor"), (W47, "s\x1fx")
    ]
    assert reopened.expire_before(W47) == [(W47 - WEEK, "\x00")]
