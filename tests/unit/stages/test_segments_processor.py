"""SegmentUsersProcessor: exact unique users per (ISO week, segment) from the views-by-user
repartition topic, and the end-to-end merge of both stages' shares."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest

from app.stages import by_user
from app.stages.segments import SegmentUsersProcessor
from app.engine.partitioner import key_partition
from app.stages.views import ViewsConfig, ViewsProcessor
from app.settings import Settings
from app.engine.transactions import Outbox
from app.models.dead_letter import DeadLetterRoute
from app.readmodels.partials import USERS, PartialsView, SegmentWeek, partial_key
from app.windows import HOUR_MS, WEEK_MS, parse_iso

from .harness import Driver, Record, records

P = 5
NOW = parse_iso("2027-03-01T00:00:00Z")
W47 = parse_iso("2026-11-16T00:00:00Z")
W48 = W47 + WEEK_MS
PARTIALS = "property-analytics-segment-partials"
DEAD = DeadLetterRoute("views-by-user", "property.views.dlq", 1 << 20)


@pytest.fixture
def make(open_store):
    def make_(name: str = "segments-005", partition: int = P) -> Driver:
        proc = SegmentUsersProcessor(partition, open_store(name), Outbox(), PARTIALS, 5, 1.0, DEAD)
        return Driver(proc, NOW)

    return make_


def reopen(d: Driver, open_store, name: str = "segments-005") -> Driver:
    d.proc.store.close()
    proc = SegmentUsersProcessor(d.proc.partition, open_store(name), Outbox(), PARTIALS, 5, 1.0, DEAD)
    return Driver(proc, NOW)


def record(*entries: tuple[str, int, str]) -> bytes:
    [value] = by_user.encode(entries)
    return value


def send(d: Driver, user: str, week: int, segment: str) -> int:
    """One record with one entry (the views stage sends a batch's entries together)."""
    return d.send(record((user, week, segment)), key=by_user.KEY)


def partials(recs: list[Record]) -> list[tuple[bytes, dict | None]]:
    return [(r.key, r.value and orjson.loads(r.value)) for r in recs if r.topic == PARTIALS]


def test_unique_users_per_week_and_segment_exact(make):
    d = make()
    for user in ["u1", "u2", "u1", "u3", "u2", "u1"]:
        send(d, user, W47, "investor")
    send(d, "u1", W47, "renter")
    send(d, "u2", W48, "investor")

    users = d.proc.users
    assert users.unique_users(W47, "investor") == 3
    assert users.unique_users(W47, "renter") == 1
    assert users.unique_users(W48, "investor") == 1
    assert d.proc.applied_offset == 7
    assert d.proc.latest_week == W48


def test_partials_published_when_punctuated(make):
    d = make()
    for user in ["u1", "u2", "u1"]:
        send(d, user, W47, "investor")
    send(d, "u9", W47, "renter")

    assert d.commit(publish=False)
    assert partials(d.published) == []

    send(d, "u3", W47, "investor")
    send(d, "u3", W47, "investor")
    assert d.commit(publish=True)
    assert partials(d.published) == [
        (partial_key(USERS, P, W47, "investor"), {"uniqueUsers": 3}),
        (partial_key(USERS, P, W47, "renter"), {"uniqueUsers": 1}),
    ]
    assert all(r.partition == 0 for r in d.published)

    # A repeated user changes nothing to publish; the offset still has to be committed.
    send(d, "u1", W47, "investor")
    assert d.commit(publish=True)
    assert len(partials(d.published)) == 2
    assert d.commit(publish=True) is False


def test_the_shares_are_punctuated_every_publish_interval(make):
    d = make()  # every 1.0 s (see make)
    send(d, "u1", W47, "investor")
    assert d.proc.punctuate(NOW) is True  # due at once
    send(d, "u2", W47, "investor")
    assert d.proc.punctuate(NOW + 999) is False  # not due yet: nothing written
    assert d.proc.punctuate(NOW + 1000) is True
    assert [v for _, v in partials(records(d.proc.outbox))] == [{"uniqueUsers": 1}, {"uniqueUsers": 2}]
    assert d.proc.punctuate(NOW + 2000) is False  # due, nothing changed: nothing written


def test_replay_is_skipped_and_restart_resumes(make, open_store):
    d = make()
    send(d, "u1", W47, "investor")
    send(d, "u2", W48, "investor")
    d.commit(publish=True)
    send(d, "u3", W48, "investor")  # never committed
    d.crash()

    d = reopen(d, open_store)
    assert d.proc.applied_offset == 1
    assert d.proc.latest_week == W48
    assert d.proc.users.unique_users(W48, "investor") == 1

    d.proc.process(0, by_user.KEY, record(("u1", W47, "investor")), NOW)
    d.proc.process(1, by_user.KEY, record(("u2", W48, "investor")), NOW)
    assert d.proc.outcomes == {"replayed": 2}
    d.proc.process(2, by_user.KEY, record(("u3", W48, "investor")), NOW)
    assert d.proc.users.unique_users(W48, "investor") == 2
    assert d.proc.users.unique_users(W47, "investor") == 1


def test_restart_republishes_every_live_share(make, open_store):
    d = make()
    send(d, "u1", W47, "investor")
    send(d, "u2", W48, "renter")
    d.commit(publish=True)
    first = partials(d.published)

    d = reopen(d, open_store)
    assert d.commit(publish=True)
    assert partials(d.published) == first


def test_retention_drops_weeks_older_than_five_weeks_behind_the_latest(make):
    d = make()
    send(d, "u1", W47, "investor")
    send(d, "u1", W47 + 5 * WEEK_MS, "investor")  # cut-off W47: kept
    assert d.proc.users.unique_users(W47, "investor") == 1
    assert [r for r in d.pending() if r.value is None] == []

    send(d, "u1", W47 + 6 * WEEK_MS, "investor")  # cut-off W48: W47 dropped
    assert d.proc.users.unique_users(W47, "investor") == 0
    assert d.pending() == [Record(PARTIALS, 0, partial_key(USERS, P, W47, "investor"), None, ())]

    send(d, "u2", W47, "investor")  # too old now: ignored, not resurrected
    assert d.proc.users.unique_users(W47, "investor") == 0
    d.commit(publish=True)
    assert partials(d.published) == [
        (partial_key(USERS, P, W47, "investor"), None),
        (partial_key(USERS, P, W47 + 5 * WEEK_MS, "investor"), {"uniqueUsers": 1}),
        (partial_key(USERS, P, W47 + 6 * WEEK_MS, "investor"), {"uniqueUsers": 1}),
    ]


def test_a_record_of_several_entries_counts_each_user_once(make):
    d = make()
    d.send(record(("u1", W48, "investor"), ("u2", W48, "investor"), ("u1", W47, "renter")),
           key=by_user.KEY)
    d.send(record(("u2", W48, "investor"), ("u3", W48, "investor")), key=by_user.KEY)
    assert d.proc.users.unique_users(W48, "investor") == 3
    assert d.proc.users.unique_users(W47, "renter") == 1
    assert d.proc.applied_offset == 1


def test_record_not_of_the_views_stage_is_counted_malformed(make):
    d = make()
    d.send(None, key=by_user.KEY)
    d.send(record(("u1", W47, "investor")), key=None)
    d.send(b"%d\x1finvestor" % W47, key=b"u1")  # one view per record: not our format
    d.send(b'[["u1", "not a week", "investor"]]', key=by_user.KEY)
    assert d.proc.outcomes == {"malformed": 4}
    assert d.proc.applied_offset == 3
    assert d.proc.users.segment_weeks() == []


def test_both_stages_end_to_end_give_exact_segment_weeks(open_store):
    """Views over 2 property partitions, repartitioned by user to 4 partitions, merged."""
    settings = Settings(topic_partitions=4)
    cfg = ViewsConfig.from_settings(settings)
    profiles = {f"inv-{i}": "investor" for i in range(6)}
    profiles |= {f"rent-{i}": "renter" for i in range(3)}
    view_stage = {
        p: Driver(ViewsProcessor(p, open_store(f"v{p}"), Outbox(), cfg, profiles.get), NOW)
        for p in (0, 1)
    }
    user_stage = {
        p: Driver(
            SegmentUsersProcessor(p, open_store(f"s{p}"), Outbox(), cfg.partials_topic, 5, 1.0, DEAD), NOW
        )
        for p in range(4)
    }
    # (property, user, hour offset in week 48)
    views = [
        ("prop-a", "inv-0", 1), ("prop-a", "inv-1", 2), ("prop-a", "inv-0", 3),
        ("prop-b", "inv-0", 4), ("prop-b", "inv-2", 5), ("prop-c", "inv-3", 6),
        ("prop-c", "rent-0", 7), ("prop-d", "rent-0", 8), ("prop-d", "rent-1", 9),
        ("prop-e", "inv-4", 10), ("prop-e", "inv-4", 11), ("prop-f", "ghost", 12),
    ]
    placement = {"prop-a": 0, "prop-b": 1, "prop-c": 0, "prop-d": 1, "prop-e": 1, "prop-f": 0}
    for i, (prop, user, hour) in enumerate(views):
        view_stage[placement[prop]].view(f"ev-{i}", W48 + hour * HOUR_MS, prop=prop, user=user)
    view_stage[0].view("ev-0", W48 + HOUR_MS, prop="prop-a", user="inv-0")  # a duplicate

    merged = PartialsView()
    for d in view_stage.values():
        d.commit(publish=True)
    to_users: dict[int, list[Record]] = defaultdict(list)
    for d in view_stage.values():
        for r in d.published:
            if r.topic == cfg.repartition_topic:
                users = {user for user, _, _ in by_user.decode(r.key, r.value)}
                assert {key_partition(u.encode(), 4) for u in users} == {r.partition}
                to_users[r.partition].append(r)
            elif r.topic == cfg.partials_topic:
                merged.apply(r.key, r.value)
    for p, recs in to_users.items():
        for r in recs:
            user_stage[p].send(r.value, r.key)
    for d in user_stage.values():
        d.commit(publish=True)
        for r in d.published:
            merged.apply(r.key, r.value)

    assert merged.segment_week("investor", W48) == SegmentWeek(
        views=8,
        unique_users=5,  # inv-0 .. inv-4
        top_properties=[["prop-a", 3], ["prop-b", 2], ["prop-e", 2], ["prop-c", 1]],
    )
    assert merged.segment_week("renter", W48) == SegmentWeek(3, 2, [["prop-d", 2], ["prop-c", 1]])
    assert merged.segment_week("unknown", W48) == SegmentWeek(1, 1, [["prop-f", 1]])
    assert merged.segments(W48) == ["investor", "renter", "unknown"]
    assert merged.segment_week("investor", W47) == SegmentWeek(0, 0, [])


def test_a_week_expiring_before_its_first_publish_is_only_tombstoned(make):
    d = make()
    send(d, "u1", W47, "investor")
    d.commit(publish=False)
    send(d, "u1", W47 + 6 * WEEK_MS, "investor")
    d.commit(publish=True)
    assert partials(d.published) == [
        (partial_key(USERS, P, W47, "investor"), None),
        (partial_key(USERS, P, W47 + 6 * WEEK_MS, "investor"), {"uniqueUsers": 1}),
    ]
