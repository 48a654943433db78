"""hourly_property_views over a real RocksDB: exact views and unique users per (property, hour)."""

from __future__ import annotations

from app.tables.hourly import HourlyCounts, HourlyPropertyViews
from app.tables.keys import family_range, split_key
from tests.unit.stores import commit

HOUR = 3_600_000
H14 = 1_795_183_200_000  # 2026-11-20T14:00:00Z


def test_missing_window_is_zero(store):
    assert HourlyPropertyViews(store).get("prop-1", H14) == HourlyCounts(0, 0, False)


def test_unique_users_exact_with_repeated_users(store):
    hourly = HourlyPropertyViews(store)
    users = ["u1", "u2", "u1", "u3", "u2", "u1", "u4"]
    results = [hourly.add_view("prop-1", H14, u) for u in users]

    assert [(c.views, c.unique_users) for c in results] == [
        (1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (6, 3), (7, 4)
    ]
    assert hourly.get("prop-1", H14) == HourlyCounts(7, 4, False)


def test_windows_and_properties_are_independent(store):
    hourly = HourlyPropertyViews(store)
    hourly.add_view("prop-1", H14, "u1")
    hourly.add_view("prop-1", H14 + HOUR, "u1")  # same user, next hour: unique again
    hourly.add_view("prop-2", H14, "u1")
    hourly.add_view("prop-1", H14, "u2")

    assert hourly.get("prop-1", H14) == HourlyCounts(2, 2)
    assert hourly.get("prop-1", H14 + HOUR) == HourlyCounts(1, 1)
    assert hourly.get("prop-2", H14) == HourlyCounts(1, 1)


def test_counts_survive_commit_and_are_readable_from_committed_state(store):
    hourly = HourlyPropertyViews(store)
    for user in ("u1", "u1", "u2"):
        hourly.add_view("prop-1", H14, user)

    assert HourlyPropertyViews(store.committed()).get("prop-1", H14) == HourlyCounts()
    commit(store, 1)
    assert HourlyPropertyViews(store.committed()).get("prop-1", H14) == HourlyCounts(3, 2)
    # Unique users keep counting exactly across the commit.
    assert hourly.add_view("prop-1", H14, "u2") == HourlyCounts(4, 2)
    assert hourly.add_view("prop-1", H14, "u3") == HourlyCounts(5, 3)


def test_mark_spike_emitted_persists(store):
    hourly = HourlyPropertyViews(store)
    counts = hourly.add_view("prop-1", H14, "u1")
    hourly.mark_spike_emitted("prop-1", H14, counts)
    commit(store, None)

    assert HourlyPropertyViews(store.committed()).get("prop-1", H14) == HourlyCounts(1, 1, True)
    assert hourly.add_view("prop-1", H14, "u2") == HourlyCounts(2, 2, True)


def test_counts_bytes_round_trip():
    counts = HourlyCounts(240, 180, True)
    assert HourlyCounts.from_bytes(counts.to_bytes()) == counts
    assert HourlyCounts.from_bytes(None) == HourlyCounts(0, 0, False)


def test_previous_views_lists_preceding_hours_newest_first_with_zeros(store):
    hourly = HourlyPropertyViews(store)
    for _ in range(3):
        hourly.add_view("prop-1", H14 - HOUR, "u")  # 13:00
    for _ in range(5):
        hourly.add_view("prop-1", H14 - 4 * HOUR, "u")  # 10:00
    hourly.add_view("prop-1", H14 - 5 * HOUR, "u")  # 09:00: outside a 4-hour lookback
    hourly.add_view("prop-1", H14, "u")  # the hour itself is not "previous"
    hourly.add_view("prop-2", H14 - 2 * HOUR, "u")  # another property

    assert hourly.previous_views("prop-1", H14, 4) == [3, 0, 0, 5]
    assert hourly.previous_views("prop-1", H14, 5) == [3, 0, 0, 5, 1]
    assert len(hourly.previous_views("prop-1", H14, 24)) == 24
    assert sum(hourly.previous_views("prop-1", H14, 24)) == 9


def test_expire_before_removes_only_older_windows(store):
    hourly = HourlyPropertyViews(store)
    hourly.add_view("prop-1", H14 - 2 * HOUR, "u1")
    hourly.add_view("prop-1", H14 - HOUR, "u1")
    hourly.add_view("prop-2", H14 - HOUR, "u2")
    hourly.add_view("prop-1", H14, "u1")
    commit(store, None)

    deleted = hourly.expire_before(H14 - HOUR)

    assert deleted == 2  # counts + one user marker of 12:00
    assert hourly.get("prop-1", H14 - 2 * HOUR) == HourlyCounts()
    assert hourly.get("prop-1", H14 - HOUR) == HourlyCounts(1, 1)
    assert hourly.get("prop-2", H14 - HOUR) == HourlyCounts(1, 1)
    assert hourly.get("prop-1", H14) == HourlyCounts(1, 1)
    commit(store, None)
    # Neither the counts nor the user markers of 12:00 are left on disk; 13:00's are.
    for family in ("h", "hu"):
        start, end = family_range(family, H14)
        on_disk = [split_key(k).window_ms for k, _ in store.committed().scan(start, end)]
        assert on_disk == [H14 - HOUR] * 2
    # A user of an expired hour counts as new if that hour were written again.
    assert hourly.add_view("prop-1", H14 - 2 * HOUR, "u1") == HourlyCounts(1, 1)


def test_expire_before_sees_pending_windows(store):
    hourly = HourlyPropertyViews(store)
    hourly.add_view("prop-1", H14 - HOUR, "u1")  # pending only
    assert hourly.expire_before(H14) == 2
    assert hourly.get("prop-1", H14 - HOUR) == HourlyCounts()
    assert hourly.expire_before(H14) == 0


def test_ids_holding_the_old_separator_do_not_share_a_marker(store):
    """Regression: (propertyId "a\\x1fb", user "c") and ("a", user "b\\x1fc") had one
    unique-user marker, so the second view's user was not counted."""
    hourly = HourlyPropertyViews(store)
    assert hourly.add_view("a\x1fb", H14, "c") == HourlyCounts(1, 1)
    assert hourly.add_view("a", H14, "b\x1fc") == HourlyCounts(1, 1)
    assert hourly.add_view("a", H14 + HOUR, "\x00") == HourlyCounts(1, 1)
    assert hourly.add_view("a", H14 + HOUR, "\x00\x00") == HourlyCounts(2, 2)
