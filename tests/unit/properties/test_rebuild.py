"""Rebuilding a partition's aggregates from its records and comparing them with the stored
state: none differ after a run; a lost, changed or extra stored entry is reported."""

from __future__ import annotations

import orjson

from app.engine.transactions import Outbox
from app.properties import snapshots
from app.properties.aggregate import PropertyState
from app.properties.rebuild import compare, rebuild_partition
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.tables.keys import plain_key
from app.tables.properties import SNAPSHOTS
from app.windows import iso_ms, parse_iso

T0 = parse_iso("2026-11-20T14:00:00Z")
NOW = parse_iso("2026-12-01T00:00:00Z")
CONFIG = PropertiesConfig.from_settings(Settings())


def records() -> list[tuple[int, bytes, bytes]]:
    out = []
    for i, (prop, kind, data) in enumerate([
        ("p1", "created", {"title": "a", "city": "b", "price": 1}),
        ("p:2", "created", {"title": "c", "city": "d", "price": 2}),
        ("p1", "rented", {"tenantId": "t"}),
        ("p1", "rented", {"tenantId": "t"}),  # refused
        ("p:2", "updated", {"price": 3}),
    ]):
        doc = {"eventId": f"e{i}", "eventType": f"property.{kind}", "timestamp": iso_ms(T0 + i),
               "propertyId": prop, "data": data}
        out.append((i, prop.encode(), orjson.dumps(doc)))
    return out


def stored_after_a_run(open_store, upto: int) -> dict[bytes, bytes]:
    store = open_store(f"stage{upto}")
    proc = PropertiesProcessor(0, store, Outbox(), CONFIG)
    for offset, key, value in records()[: upto + 1]:
        proc.process(offset, key, value, NOW)
    proc.before_commit(NOW)
    return {k: v for k, v in store.pending.items() if v is not None}


def test_a_run_and_its_rebuild_do_not_differ_at_any_applied_offset(open_store):
    for upto in range(5):
        stored = stored_after_a_run(open_store, upto)
        rebuilt = rebuild_partition(0, records()[: upto + 1], open_store(f"scratch{upto}"), CONFIG, NOW)
        check = compare(0, stored, rebuilt)
        assert check.differences == [] and check.applied_offset == upto
    assert (check.properties, check.events) == (2, 4)


def test_a_changed_or_lost_stored_entry_is_reported(open_store):
    stored = stored_after_a_run(open_store, 4)
    rebuilt = rebuild_partition(0, records(), open_store("scratch"), CONFIG, NOW)
    key = plain_key("ps", "p:2")
    state = PropertyState.from_bytes(stored[key])
    stored[key] = PropertyState(state.property_id, "rented", state.version, state.created_at_ms,
                                state.updated_at_ms, state.data).to_bytes()
    history = [k for k in stored if k.startswith(plain_key("ph", "p1"))]
    del stored[history[-1]]
    differences = compare(0, stored, rebuilt).differences
    assert len(differences) == 2
    assert differences[0].startswith("history of 'p1' version 2: stored none, rebuilt {")
    assert differences[1].startswith("state of 'p:2': stored {") and "'status': 'rented'" in differences[1]


def long_records(updates: int) -> list[tuple[int, bytes, bytes]]:
    """A property ``p:long`` created, then updated ``updates`` times."""
    out = []
    for i in range(updates + 1):
        kind, data = ("created", {"title": "a", "city": "b", "price": 0}) if i == 0 else (
            "updated", {"price": i})
        doc = {"eventId": f"e{i}", "eventType": f"property.{kind}", "timestamp": iso_ms(T0 + i),
               "propertyId": "p:long", "data": data}
        out.append((i, b"p:long", orjson.dumps(doc)))
    return out


def stored_long(open_store, updates: int) -> dict[bytes, bytes]:
    store = open_store("stage-long")
    proc = PropertiesProcessor(0, store, Outbox(), CONFIG)
    for offset, key, value in long_records(updates):
        proc.process(offset, key, value, NOW)
    proc.before_commit(NOW)
    return {k: v for k, v in store.pending.items() if v is not None}


def test_snapshots_are_compared_and_a_changed_or_lost_one_is_reported(open_store):
    stored = stored_long(open_store, 99)  # 100 events: snapshots at 32, 64, 96
    rebuilt = rebuild_partition(0, long_records(99), open_store("scratch"), CONFIG, NOW)
    snaps = sorted(k for k in stored if k.startswith(plain_key(SNAPSHOTS)))
    assert len(snaps) == 3 and snapshots.is_done(stored[snapshots.PROGRESS_KEY])
    assert compare(0, stored, rebuilt).differences == []
    changed = PropertyState.from_bytes(stored[snaps[1]])
    stored[snaps[1]] = PropertyState(changed.property_id, changed.status, changed.version,
                                     changed.created_at_ms, changed.updated_at_ms,
                                     {**changed.data, "price": -1}).to_bytes()
    del stored[snaps[0]]
    differences = compare(0, stored, rebuilt).differences
    assert len(differences) == 2
    assert differences[0].startswith("snapshot of 'p:long' version 32: stored none, rebuilt {")
    assert differences[1].startswith("snapshot of 'p:long' version 64: stored {")
    assert "'price': -1" in differences[1]


def test_snapshots_an_older_store_has_not_backfilled_yet_are_not_differences(open_store):
    stored = stored_long(open_store, 99)
    rebuilt = rebuild_partition(0, long_records(99), open_store("scratch"), CONFIG, NOW)
    snaps = sorted(k for k in stored if k.startswith(plain_key(SNAPSHOTS)))
    del stored[snaps[0]], stored[snaps[2]]
    stored[snapshots.PROGRESS_KEY] = b"40 p:long"  # backfill under way
    check = compare(0, stored, rebuilt)
    assert (check.differences, check.snapshots_missing) == ([], 2)
    del stored[snapshots.PROGRESS_KEY]  # not started
    assert compare(0, stored, rebuilt).snapshots_missing == 2
