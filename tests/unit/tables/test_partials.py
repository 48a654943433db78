"""segment_partials: every partition's share of a (segment, week), merged exactly."""

from __future__ import annotations

import orjson

from app.tables.partials import (
    USERS,
    VIEWS,
    PartialsView,
    SegmentWeek,
    partial_key,
    users_partial,
    views_partial,
)

WEEK = 604_800_000
W47 = 1_794_787_200_000  # Monday 2026-11-16


def test_key_and_value_formats():
    assert partial_key(VIEWS, 3, W47, "investor") == b"views\x1f3\x1f1794787200000\x1finvestor"
    assert partial_key(USERS, 11, W47, "renter") == b"users\x1f11\x1f1794787200000\x1frenter"
    assert orjson.loads(views_partial(7, [["prop-1", 4], ["prop-2", 3]])) == {
        "views": 7, "top": [["prop-1", 4], ["prop-2", 3]]
    }
    assert orjson.loads(users_partial(5)) == {"uniqueUsers": 5}


def test_unknown_segment_week_is_zeros_and_empty_top():
    assert PartialsView().segment_week("investor", W47) == SegmentWeek(0, 0, [])


def test_shares_of_all_partitions_add_up():
    view = PartialsView()
    top_0 = [["prop-c", 5], ["prop-a", 4]]
    top_1 = [["prop-b", 5], ["prop-d", 1]]
    view.apply(partial_key(VIEWS, 0, W47, "investor"), views_partial(9, top_0))
    view.apply(partial_key(VIEWS, 1, W47, "investor"), views_partial(6, top_1))
    view.apply(partial_key(USERS, 0, W47, "investor"), users_partial(3))
    view.apply(partial_key(USERS, 7, W47, "investor"), users_partial(4))
    view.apply(partial_key(VIEWS, 0, W47, "renter"), views_partial(1, [["prop-a", 1]]))

    assert view.segment_week("investor", W47) == SegmentWeek(
        views=15,
        unique_users=7,
        top_properties=[["prop-b", 5], ["prop-c", 5], ["prop-a", 4], ["prop-d", 1]],
    )
    assert view.segment_week("renter", W47) == SegmentWeek(1, 0, [["prop-a", 1]])
    assert view.segments(W47) == ["investor", "renter"]
    assert view.segments(W47 + WEEK) == []
    assert view.weeks() == [W47]


def test_a_newer_share_of_a_partition_replaces_the_older_one():
    view = PartialsView()
    key = partial_key(VIEWS, 2, W47, "investor")
    view.apply(key, views_partial(3, [["prop-1", 3]]))
    view.apply(key, views_partial(5, [["prop-1", 4], ["prop-2", 1]]))
    view.apply(partial_key(USERS, 2, W47, "investor"), users_partial(2))
    view.apply(partial_key(USERS, 2, W47, "investor"), users_partial(3))

    assert view.segment_week("investor", W47) == SegmentWeek(5, 3, [["prop-1", 4], ["prop-2", 1]])


def test_tombstones_remove_shares_and_empty_slots():
    view = PartialsView()
    view.apply(partial_key(VIEWS, 0, W47, "investor"), views_partial(2, [["prop-1", 2]]))
    view.apply(partial_key(USERS, 0, W47, "investor"), users_partial(2))
    view.apply(partial_key(VIEWS, 0, W47 + WEEK, "investor"), views_partial(1, [["prop-9", 1]]))

    view.apply(partial_key(VIEWS, 0, W47, "investor"), None)
    assert view.segment_week("investor", W47) == SegmentWeek(0, 2, [])
    assert view.segments(W47) == ["investor"]

    view.apply(partial_key(USERS, 0, W47, "investor"), None)
    assert view.segment_week("investor", W47) == SegmentWeek(0, 0, [])
    assert view.segments(W47) == []
    assert view.weeks() == [W47 + WEEK]

    view.apply(partial_key(USERS, 5, W47, "nobody"), None)  # tombstone for nothing: no-op
    assert view.weeks() == [W47 + WEEK]


def test_merged_top_is_limited_to_ten():
    view = PartialsView()
    for part in range(3):
        top = [[f"p{part}-{i}", 10 * part + i] for i in range(10)]
        view.apply(partial_key(VIEWS, part, W47, "investor"), views_partial(100, top))

    answer = view.segment_week("investor", W47)
    assert answer.views == 300
    assert answer.top_properties == [[f"p2-{i}", 20 + i] for i in range(9, -1, -1)]
