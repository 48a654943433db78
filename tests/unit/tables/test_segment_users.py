"""segment_weekly_users: exact unique users per (ISO week, segment)."""

from __future__ import annotations

from app.tables.segment_users import SegmentWeeklyUsers
from tests.unit.stores import commit

WEEK = 604_800_000
W47 = 1_794_787_200_000  # Monday 2026-11-16


def test_repeated_users_are_not_counted_twice(store):
    users = SegmentWeeklyUsers(store)
    added = [users.add_user(W47, "investor", u) for u in ["u1", "u2", "u1", "u3", "u2", "u1"]]

    assert added == [True, True, False, True, False, False]
    assert users.unique_users(W47, "investor") == 3


def test_weeks_and_segments_are_independent(store):
    users = SegmentWeeklyUsers(store)
    users.add_user(W47, "investor", "u1")
    users.add_user(W47, "renter", "u1")
    users.add_user(W47 + WEEK, "investor", "u1")
    users.add_user(W47, "investor", "u2")

    assert users.unique_users(W47, "investor") == 2
    assert users.unique_users(W47, "renter") == 1
    assert users.unique_users(W47 + WEEK, "investor") == 1
    assert users.unique_users(W47 - WEEK, "investor") == 0
    assert sorted(users.segment_weeks()) == [
        (W47, "investor"), (W47, "renter"), (W47 + WEEK, "investor")
    ]


def test_counting_stays_exact_across_commits(store):
    users = SegmentWeeklyUsers(store)
    users.add_user(W47, "investor", "u1")
    commit(store, 10)
    assert users.add_user(W47, "investor", "u1") is False
    assert users.add_user(W47, "investor", "u2") is True
    assert users.unique_users(W47, "investor") == 2
    assert SegmentWeeklyUsers(store.committed()).unique_users(W47, "investor") == 1


def test_expire_before_drops_older_weeks_with_their_markers(store):
    users = SegmentWeeklyUsers(store)
    users.add_user(W47 - WEEK, "investor", "u1")
    users.add_user(W47 - WEEK, "renter", "u2")
    users.add_user(W47, "investor", "u1")
    commit(store, None)

    assert sorted(users.expire_before(W47)) == [(W47 - WEEK, "investor"), (W47 - WEEK, "renter")]
    assert users.unique_users(W47 - WEEK, "investor") == 0
    assert users.unique_users(W47, "investor") == 1
    assert users.segment_weeks() == [(W47, "investor")]
    # The marker went too: the user is new again for that week.
    assert users.add_user(W47 - WEEK, "investor", "u1") is True


def test_ids_holding_the_old_separator_do_not_share_a_marker(store):
    """Regression: (segment "a\\x1fb", user "c") and (segment "a", user "b\\x1fc") had one
    marker key, so the second user was not counted."""
    users = SegmentWeeklyUsers(store)
    assert users.add_user(W47, "a\x1fb", "c") is True
    assert users.add_user(W47, "a", "b\x1fc") is True
    assert users.unique_users(W47, "a") == 1
    assert users.unique_users(W47, "a\x1fb") == 1
    assert sorted(users.segment_weeks()) == [(W47, "a"), (W47, "a\x1fb")]
