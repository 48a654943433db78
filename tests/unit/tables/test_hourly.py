"""hourly_property_views over a real RocksDB: exact views and unique users per (property, hour)."""

from __future__ import annotations

import itertools

from app.tables.hourly import (
    HourSummary,
    HourlyCounts,
    HourlyPropertyViews,
    LEADERS,
    HourTop,
    top_of_hour,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.tables.keys import family_range, split_key
from tests.unit.stores import commit as commit_store

HOUR = 3_600_000
H14 = 1_795_183_200_000  # 2026-11-20T14:00:00Z


def commit(store, changelog_offset: int | None, *hourlies: HourlyPropertyViews) -> None:  # noqa: ANN001
    """What the views stage does around a commit: the hour summaries changed in memory are
    written (``before_commit``), then the store is sealed and applied."""
    for hourly in hourlies:
        hourly.flush()
    commit_store(store, changelog_offset)


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
    commit(store, 1, hourly)
    assert HourlyPropertyViews(store.committed()).get("prop-1", H14) == HourlyCounts(3, 2)
    # Unique users keep counting exactly across the commit.
    assert hourly.add_view("prop-1", H14, "u2") == HourlyCounts(4, 2)
    assert hourly.add_view("prop-1", H14, "u3") == HourlyCounts(5, 3)


def test_mark_spike_emitted_persists(store):
    hourly = HourlyPropertyViews(store)
    counts = hourly.add_view("prop-1", H14, "u1")
    hourly.mark_spike_emitted("prop-1", H14, counts)
    commit(store, None, hourly)

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
    commit(store, None, hourly)

    deleted = hourly.expire_before(H14 - HOUR)

    assert deleted == 3  # counts, one user marker and the hour's summary of 12:00
    assert hourly.get("prop-1", H14 - 2 * HOUR) == HourlyCounts()
    assert hourly.get("prop-1", H14 - HOUR) == HourlyCounts(1, 1)
    assert hourly.get("prop-2", H14 - HOUR) == HourlyCounts(1, 1)
    assert hourly.get("prop-1", H14) == HourlyCounts(1, 1)
    commit(store, None, hourly)
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
    assert hourly.expire_before(H14) == 3  # counts, marker, summary
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


# -- the hour's top and totals ------------------------------------------------------------


class CountingReads:
    """A store's reads, counting the keys a scan hands out."""

    def __init__(self, store) -> None:  # noqa: ANN001
        self._store = store
        self.scanned = 0

    def get(self, key: bytes) -> bytes | None:
        return self._store.get(key)

    def scan(self, start: bytes, end: bytes):  # noqa: ANN201
        for item in self._store.scan(start, end):
            self.scanned += 1
            yield item


def feed(hourly: HourlyPropertyViews, hour: int, props: int) -> dict[str, tuple[int, int]]:
    """prop-i gets (i % 17) + 1 views from (i % 5) + 1 users; returns the counts."""
    out = {}
    for i in range(props):
        prop, views, users = f"prop-{i:04d}", i % 17 + 1, min(i % 5 + 1, i % 17 + 1)
        for v in range(views):
            hourly.add_view(prop, hour, f"u{v % users}")
        out[prop] = (views, users)
    return out


def by_views(counts: dict[str, tuple[int, int]], limit: int) -> list[tuple[int, str, int]]:
    rows = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))[:limit]
    return [(v, p, u) for p, (v, u) in rows]


def test_the_top_is_one_read_however_many_properties_the_hour_has(store):
    hourly = HourlyPropertyViews(store)
    counts = feed(hourly, H14, 3000)
    feed(hourly, H14 + HOUR, 50)  # another hour does not mix in
    commit(store, None, hourly)
    reads = CountingReads(store.committed())

    top = top_of_hour(reads, H14, 10)

    assert top.rows == by_views(counts, 10)
    assert top.views == sum(v for v, _ in counts.values())
    assert top.properties == 3000
    assert reads.scanned == 0  # not 3,000
    assert top_of_hour(reads, H14, LEADERS).rows == by_views(counts, LEADERS)
    assert top_of_hour(reads, H14 + 2 * HOUR, 10) == HourTop([], 0, 0)


def test_the_top_follows_every_view_pending_or_committed(store):
    hourly = HourlyPropertyViews(store)
    counts = feed(hourly, H14, 40)
    hourly.flush()
    assert top_of_hour(store, H14, 5).rows == by_views(counts, 5)  # pending writes
    commit(store, None, hourly)
    for _ in range(30):  # prop-0039 overtakes every other
        hourly.add_view("prop-0039", H14, "new")
    counts["prop-0039"] = (counts["prop-0039"][0] + 30, counts["prop-0039"][1] + 1)
    commit(store, None, hourly)
    top = top_of_hour(store.committed(), H14, 3)
    assert top.rows == by_views(counts, 3) and top.rows[0][1] == "prop-0039"
    assert (top.views, top.properties) == (sum(v for v, _ in counts.values()), 40)


def test_a_rolled_back_view_leaves_the_summary_as_committed(store):
    """A reader of the store after a rollback (pending writes dropped) gets the committed
    summary, not the one decoded in memory with the dropped views."""
    hourly = HourlyPropertyViews(store)
    counts = feed(hourly, H14, 20)
    commit(store, None, hourly)
    for _ in range(50):
        hourly.add_view("prop-0001", H14, "x")
    store.discard_pending()
    hourly.add_view("prop-0002", H14, "y")
    counts["prop-0002"] = (counts["prop-0002"][0] + 1, counts["prop-0002"][1] + 1)
    commit(store, None, hourly)
    top = top_of_hour(store.committed(), H14, 20)
    assert top.rows == by_views(counts, 20)
    assert top.views == sum(v for v, _ in counts.values())


_FRESH_HOURS = itertools.count(10)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 70), st.integers(0, 4), st.integers(0, 19)),
                max_size=400),
       st.integers(1, LEADERS))
def test_the_leaders_are_the_exact_top_for_any_order_of_views(store, views, limit):
    """Whatever the views and wherever the commits fall between them (third item 0: a
    commit after that view)."""
    hourly = HourlyPropertyViews(store)
    hour = H14 + next(_FRESH_HOURS) * HOUR  # a fresh hour per example
    counts: dict[str, tuple[int, set[str]]] = {}
    for prop_n, user_n, commit_after in views:
        prop, user = f"p{prop_n}", f"u{user_n}"
        hourly.add_view(prop, hour, user)
        seen = counts.setdefault(prop, (0, set()))
        counts[prop] = (seen[0] + 1, seen[1] | {user})
        if commit_after == 0:
            commit(store, None, hourly)
    commit(store, None, hourly)
    exact = {p: (v, len(users)) for p, (v, users) in counts.items()}
    top = top_of_hour(store.committed(), hour, limit)
    assert top.rows == by_views(exact, limit)
    assert (top.views, top.properties) == (len(views), len(exact))


class CountingPuts:
    """A store whose puts of hour summaries are counted, by key."""

    def __init__(self, store) -> None:  # noqa: ANN001
        self._store = store
        self.summary_puts: dict[bytes, int] = {}

    def __getattr__(self, name: str):  # noqa: ANN204 - every other method as the store's
        return getattr(self._store, name)

    def put(self, key: bytes, value: bytes) -> None:
        if key.startswith(b"hs\x00"):
            self.summary_puts[key] = self.summary_puts.get(key, 0) + 1
        self._store.put(key, value)


def test_a_round_writes_each_changed_summary_once(store):
    """Encoding and writing an hour's summary on every view cost more than the rest of its
    upkeep: the summaries are written once per round, by ``flush``."""
    counted = CountingPuts(store)
    hourly = HourlyPropertyViews(counted)
    counts = feed(hourly, H14, 60)  # 60 properties, 540 views
    hourly.add_view("prop-x", H14 + HOUR, "u1")
    assert counted.summary_puts == {}  # nothing written per view
    commit(store, None, hourly)
    assert sorted(counted.summary_puts.values()) == [1, 1]  # each changed hour once
    counted.summary_puts.clear()
    hourly.add_view("prop-0001", H14, "u9")
    counts["prop-0001"] = (counts["prop-0001"][0] + 1, counts["prop-0001"][1] + 1)
    commit(store, None, hourly)
    assert list(counted.summary_puts.values()) == [1]  # 13:00 unchanged: not written again
    assert top_of_hour(store.committed(), H14, LEADERS).rows == by_views(counts, LEADERS)


def test_a_rollback_drops_the_summaries_not_written_yet(store):
    """What a record that failed half-way (``OwnedPartitions.rewind``) or a fenced round
    rolls back, the summaries changed in memory since the last flush go with."""
    hourly = HourlyPropertyViews(store)
    counts = feed(hourly, H14, 20)
    commit(store, None, hourly)
    for _ in range(30):
        hourly.add_view("prop-0003", H14, "rolled-back")
    store.rollback()
    hourly.flush()  # the processor's next before_commit
    assert [k for k in store.pending if k.startswith(b"hs\x00")] == []
    commit(store, None, hourly)
    top = top_of_hour(store.committed(), H14, 20)
    assert top.rows == by_views(counts, 20)
    assert top.views == sum(v for v, _ in counts.values())
    # and a processor made anew over the store (what a rewind does) goes on from there
    fresh = HourlyPropertyViews(store)
    fresh.add_view("prop-0004", H14, "new")
    counts["prop-0004"] = (counts["prop-0004"][0] + 1, counts["prop-0004"][1] + 1)
    commit(store, None, fresh)
    assert top_of_hour(store.committed(), H14, 20).rows == by_views(counts, 20)
def test_an_hour_counted_before_it_had_ranks_is_read_whole_and_stays_exact(store):
    """Counts written by the version before: no TOP or SUMMARY keys for the hour."""
    hourly = HourlyPropertyViews(store)
    counts = feed(hourly, H14, 30)
    for key in [k for k in store.pending if k.startswith(b"hs\x00")]:
        del store.pending[key]
    commit(store, None)
    fresh = HourlyPropertyViews(store)  # a restart on the new version
    fresh.add_view("prop-0000", H14, "late")
    counts["prop-0000"] = (counts["prop-0000"][0] + 1, counts["prop-0000"][1] + 1)
    commit(store, None, fresh)
    reads = CountingReads(store.committed())
    top = top_of_hour(reads, H14, 4)
    assert top.rows == by_views(counts, 4)
    assert (top.views, top.properties) == (sum(v for v, _ in counts.values()), 30)
    assert reads.scanned == 30




@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 90), max_size=600), st.integers(0, 600))
def test_a_summary_keeps_its_leaders_ranked_after_every_view(props, decoded_at):
    """The ranks kept sorted view by view are the leaders' exact order, and the leaders the
    exact top, also for a summary read back from its bytes half-way (ranks made anew)."""
    summary = HourSummary()
    views: dict[str, int] = {}
    for i, n in enumerate(props):
        if i == decoded_at:
            summary = HourSummary.from_bytes(summary.to_bytes())
        prop = f"p{n:02d}"
        views[prop] = views.get(prop, 0) + 1
        summary.add(prop, views[prop], 1)
        exact = sorted((-v, p) for p, v in views.items())[:LEADERS]
        assert sorted(summary.ranks()) == summary.ranks() == exact
        assert summary.top(LEADERS) == [(-v, p, 1) for v, p in exact]
    assert (summary.views, summary.properties) == (len(props), len(views))
