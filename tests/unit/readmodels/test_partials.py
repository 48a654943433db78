"""segment_partials: every partition's share of a (segment, week), merged exactly."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.readmodels.partials import (
    position_key,
    position_partial,
    USERS,
    VIEWS,
    BadPartial,
    PartialKey,
    PartialsView,
    SegmentWeek,
    parse_partial_key,
    partial_key,
    users_partial,
    views_partial,
)

WEEK = 604_800_000
W47 = 1_794_787_200_000  # Monday 2026-11-16


def test_key_and_value_formats():
    week = (W47 + 2**63).to_bytes(8, "big")
    assert partial_key(VIEWS, 3, W47, "investor") == (
        b"views\x00\x01" + week + b"3\x00\x01investor\x00\x01"
    )
    assert partial_key(USERS, 11, W47, "renter") == (
        b"users\x00\x01" + week + b"11\x00\x01renter\x00\x01"
    )
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
    assert view.weeks() == [W47, W47 + WEEK]

    view.apply(partial_key(VIEWS, 0, W47, "investor"), None)
    assert view.segment_week("investor", W47) == SegmentWeek(0, 2, [])
    assert view.segments(W47) == ["investor"]

    view.apply(partial_key(USERS, 0, W47, "investor"), None)
    assert view.segment_week("investor", W47) == SegmentWeek(0, 0, [])
    assert view.segments(W47) == []
    assert view.segments(W47 + WEEK) == ["investor"]
    assert view.weeks() == [W47 + WEEK]  # a week without shares is gone

    view.apply(partial_key(USERS, 5, W47, "nobody"), None)  # tombstone for nothing: no-op
    assert view.segments(W47) == []
    assert view.segment_week("investor", W47 + WEEK) == SegmentWeek(1, 0, [["prop-9", 1]])


def test_merged_top_is_limited_to_ten():
    view = PartialsView()
    for part in range(3):
        top = [[f"p{part}-{i}", 10 * part + i] for i in range(10)]
        view.apply(partial_key(VIEWS, part, W47, "investor"), views_partial(100, top))

    answer = view.segment_week("investor", W47)
    assert answer.views == 300
    assert answer.top_properties == [[f"p2-{i}", 20 + i] for i in range(9, -1, -1)]


def test_a_segment_holding_the_old_separator_is_merged():
    """Regression: a profile with segment "s\\x1fx" made every worker's partials view raise
    on the record of its share, at every restart."""
    view = PartialsView()
    view.apply(partial_key(VIEWS, 0, W47, "s\x1fx"), views_partial(2, [["a\x1fb", 2]]))
    view.apply(partial_key(USERS, 4, W47, "s\x1fx"), users_partial(1))
    view.apply(partial_key(VIEWS, 1, W47, "s"), views_partial(1, [["p", 1]]))

    assert view.segment_week("s\x1fx", W47) == SegmentWeek(2, 1, [["a\x1fb", 2]])
    assert view.segment_week("s", W47) == SegmentWeek(1, 0, [["p", 1]])
    assert view.segments(W47) == ["s", "s\x1fx"]


@given(st.sampled_from([VIEWS, USERS]), st.integers(0, 10_000), st.integers(-(2**63), 2**63 - 1),
       st.text())
def test_parse_partial_key_inverts_partial_key(kind, partition, week, segment):
    key = partial_key(kind, partition, week, segment)
    assert parse_partial_key(key) == PartialKey(kind, partition, week, segment)


@pytest.mark.parametrize(
    "key",
    [
        b"views\x1f3\x1f1794787200000\x1finvestor",  # the old layout
        b"",
        partial_key(VIEWS, 3, W47, "investor")[:-1],
        partial_key(USERS, 3, W47, "investor") + b"extra\x00\x01",
        partial_key(VIEWS, 3, W47, "investor").replace(b"views", b"other"),
        partial_key(VIEWS, 3, W47, "investor").replace(b"3\x00", b"03\x00"),
        partial_key(VIEWS, 3, W47, "investor").replace(b"3\x00", b"\xd9\xa3\x00"),  # Arabic 3
    ],
)
def test_keys_it_cannot_read_raise_bad_partial_and_change_nothing(key):
    view = PartialsView()
    view.apply(partial_key(VIEWS, 3, W47, "investor"), views_partial(2, [["p", 2]]))
    with pytest.raises(BadPartial):
        view.apply(key, views_partial(9, [["q", 9]]))
    with pytest.raises(BadPartial):
        view.apply(key, None)
    assert view.segment_week("investor", W47) == SegmentWeek(2, 0, [["p", 2]])
    assert view.segments(W47) == ["investor"]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (VIEWS, b"not json"),
        (VIEWS, b"[]"),
        (VIEWS, b'{"views": 3}'),
        (VIEWS, b'{"views": -1, "top": []}'),
        (VIEWS, b'{"views": true, "top": []}'),
        (VIEWS, b'{"views": 3, "top": [["p"]]}'),
        (VIEWS, b'{"views": 3, "top": [[1, 2]]}'),
        (VIEWS, b'{"uniqueUsers": 3}'),
        (USERS, b'{"views": 3, "top": []}'),
        (USERS, b'{"uniqueUsers": "3"}'),
    ],
)
def test_values_it_cannot_read_raise_bad_partial_and_change_nothing(kind, value):
    view = PartialsView()
    key = partial_key(kind, 0, W47, "investor")
    with pytest.raises(BadPartial):
        view.apply(key, value)
    assert view.segments(W47) == []
    assert view.segment_week("investor", W47) == SegmentWeek(0, 0, [])


async def test_position_records_say_what_each_partitions_shares_reflect():
    view = PartialsView()
    woken = view.moved.next()
    view.apply(position_key(3), position_partial(120))
    assert view.positions == {3: 120} and woken.done()
    view.apply(position_key(3), position_partial(180))
    view.apply(position_key(0), position_partial(-1))
    assert view.positions == {3: 180, 0: -1}
    assert view.segment_week("investor", 0).views == 0  # not a share
    view.apply(position_key(3), None)
    assert view.positions == {0: -1}


@pytest.mark.parametrize("value", [b'{"offset": -2}', b'{"offset": true}', b'{"offset": "1"}', b"[]"])
def test_bad_position_records_raise_bad_partial_and_change_nothing(value):
    view = PartialsView()
    with pytest.raises(BadPartial):
        view.apply(position_key(1), value)
    assert view.positions == {}


SEGMENTS = ["a", "b", "c", "d"]
OP = st.tuples(
    st.sampled_from([VIEWS, USERS]), st.integers(0, 3), st.sampled_from([W47, W47 + WEEK]),
    st.sampled_from(SEGMENTS), st.none() | st.integers(0, 50),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(OP, max_size=40), st.integers(1, 5))
def test_a_weeks_top_segments_follow_every_share_and_tombstone(ops, limit):
    """The per-week index against the shares added up from scratch, after any sequence."""
    view = PartialsView()
    held: dict[tuple[str, int, int, str], int] = {}
    for kind, partition, week, segment, n in ops:
        key = partial_key(kind, partition, week, segment)
        if n is None:
            view.apply(key, None)
            held.pop((kind, partition, week, segment), None)
        else:
            view.apply(key, views_partial(n, []) if kind == VIEWS else users_partial(n))
            held[(kind, partition, week, segment)] = n
    for week in (W47, W47 + WEEK):
        segments = sorted({s for (_, _, w, s) in held if w == week})
        assert view.segments(week) == segments
        views = {s: sum(n for (k, _, w, s2), n in held.items() if k == VIEWS and w == week and s2 == s)
                 for s in segments}
        top, count = view.top_segments(week, limit)
        assert count == len(segments)
        best = sorted(views.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        assert [(s, a.views) for s, a in top] == best
    assert view.weeks() == sorted({w for (_, _, w, _) in held})
