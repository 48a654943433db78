"""seen_events: accepted eventIds with their event time, and the purge of old ones."""

from __future__ import annotations

from app.tables.seen_events import SeenEvents
from tests.unit.stores import commit

T = 1_795_183_387_120  # 2026-11-20T14:03:07.120Z
HOUR = 3_600_000


def test_unknown_id_has_no_acceptance_time(store):
    assert SeenEvents(store).accepted_at("ev-1") is None


def test_remember_records_the_event_time_by_id_alone(store):
    seen = SeenEvents(store)
    seen.remember("ev-1", T)
    seen.remember("ev-2", T - HOUR)

    assert seen.accepted_at("ev-1") == T
    assert seen.accepted_at("ev-2") == T - HOUR
    assert seen.accepted_at("ev-3") is None
    commit(store, 1)
    assert SeenEvents(store.committed()).accepted_at("ev-1") == T


def test_expire_forgets_only_ids_older_than_the_cut(store):
    seen = SeenEvents(store)
    seen.remember("old", T - 25 * HOUR)
    seen.remember("edge", T - 24 * HOUR)
    seen.remember("new", T)
    commit(store, None)
    seen.remember("pending-old", T - 30 * HOUR)

    assert seen.expire(T - 24 * HOUR) == 2

    assert seen.accepted_at("old") is None
    assert seen.accepted_at("pending-old") is None
    assert seen.accepted_at("edge") == T - 24 * HOUR
    assert seen.accepted_at("new") == T
    assert seen.expire(T - 24 * HOUR) == 0
