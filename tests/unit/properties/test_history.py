"""A property at a time from its snapshots (``app.properties.history``) equals the fold of its
whole history up to that time (the aggregate's ``rebuild``, the old way: the oracle), for any
sequence of events, any snapshot interval and any time, with or without the snapshots of an
older store; and it reads O(log n) of a history of n events, whatever n."""

from __future__ import annotations

import itertools
import math

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.models.events import PropertyEvent
from app.properties import snapshots
from app.properties.aggregate import PropertyState, Refused, StoredEvent, apply, rebuild
from app.properties.history import state_at
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.tables.keys import family_range, plain_key
from app.tables.properties import SNAPSHOT_EVERY, SNAPSHOTS, PropertyTable
from app.windows import iso_ms
from tests.support.counting_store import CountingStore

from ..stores import commit

T0 = 1_700_000_000_000
MIN = 60_000
_ids = itertools.count()


def applied_history(table: PropertyTable, prop: str, raw) -> list[StoredEvent]:  # noqa: ANN001
    """Apply ``raw`` (kind, time step, data) to ``prop`` as the stage does; the history kept."""
    state, history, ts = None, [], T0
    for i, (kind, step, data) in enumerate(raw):
        ts += step
        result = apply(state, PropertyEvent(f"e{i}", kind, ts, prop, dict(data)))
        if isinstance(result, Refused):
            continue
        state = result
        stored = StoredEvent(state.version, PropertyEvent(f"e{i}", kind, ts, prop, dict(data)))
        table.record(state, stored)
        history.append(stored)
    return history


_data = st.fixed_dictionaries({}, optional={
    "title": st.text(max_size=4), "price": st.integers(0, 5000),
    "status": st.sampled_from(["listed", "rented"]), "tenantId": st.sampled_from(["t1", "t2"]),
})
_events = st.lists(
    st.tuples(
        st.sampled_from(["updated", "updated", "rented", "created"]),
        st.sampled_from([0, 0, 1, 7, MIN]),  # equal times too: several events at one instant
        _data,
    ),
    max_size=120,
).map(lambda rest: [("created", 0, {"title": "Loft", "price": 1})] + rest)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    raw=_events,
    every=st.integers(1, 9),
    times=st.lists(st.integers(-MIN, 130 * MIN), min_size=1, max_size=8),
    committed=st.booleans(),
    lost=st.sets(st.integers(1, 40), max_size=5),
)
def test_the_state_at_any_time_is_the_fold_of_the_history_up_to_it(
    store, raw, every, times, committed, lost
):
    prop = f"p:{next(_ids)}"
    table = PropertyTable(store, snapshot_every=every)
    history = applied_history(table, prop, raw)
    if committed:  # from RocksDB, or from the pending writes
        commit(store, None)
    for k in lost:  # an older store: some snapshots never written
        store.delete(plain_key(SNAPSHOTS, prop) + (k * every).to_bytes(8, "big"))
    for dt in times:
        as_of = T0 + dt
        assert state_at(table, prop, as_of) == rebuild(history, as_of)
    for stored in history:  # at each event's own time: every event of that instant
        assert state_at(table, prop, stored.event.timestamp_ms) == rebuild(
            history, stored.event.timestamp_ms
        )


def test_an_unknown_property_and_a_time_before_created_are_none(store):
    table = PropertyTable(store, snapshot_every=2)
    applied_history(table, "p", [("created", 10, {"price": 1}), ("updated", 10, {"price": 2})])
    assert state_at(table, "nobody", T0 + 100) is None
    assert state_at(table, "p", T0 + 9) is None
    assert state_at(table, "p", T0 + 10).version == 1
    assert state_at(table, "p", T0 + 20).version == 2


def _long_history(store: PartitionStore, events: int) -> PropertiesProcessor:
    """``events`` events on one property through the stage's processor, a minute apart."""
    config = PropertiesConfig.from_settings(Settings())
    processor = PropertiesProcessor(0, store, Outbox(), config)
    now = T0 + (events + 10) * MIN
    for i in range(events):
        kind, data = ("created", {"title": "Loft", "city": "Lyon", "price": 1}) if i == 0 else (
            "updated", {"price": i})
        doc = {"eventId": f"e{i}", "eventType": f"property.{kind}", "timestamp": iso_ms(T0 + i * MIN),
               "propertyId": "popular", "data": data}
        processor.process(i, b"popular", orjson.dumps(doc), now)
        if i % 5000 == 4999:
            processor.before_commit(now)
            commit(store, i)
    processor.before_commit(now)
    commit(store, events)
    return processor


def _reads_per_lookup(store: CountingStore, processor: PropertiesProcessor, events: int) -> list[int]:
    reads = []
    for i in range(0, events, max(1, events // 97)):  # ~100 times spread over the history
        store.reads = 0
        state = processor.state_at("popular", T0 + i * MIN + MIN // 2)
        reads.append(store.reads)
        assert state.version == i + 1 and state.data["price"] == (i or 1)
    return reads


def test_a_join_reads_o_log_n_of_a_100k_event_history(tmp_path):
    """The views stage's join (``state_at``) of a property with 1,000 and with 100,000 events:
    the reads per lookup are at most 2 + log2(n / 32) + 32, and grow by the log only (the
    whole-history fold read all n)."""
    from ..conftest import SMALL
    from app.engine.store import rocksdb_options

    worst = {}
    for events in (1_000, 100_000):
        store = CountingStore(tmp_path / f"p{events}", rocksdb_options(SMALL, SMALL))
        processor = _long_history(store, events)
        reads = _reads_per_lookup(store, processor, events)
        worst[events] = max(reads)
        bound = 2 + math.ceil(math.log2(events / SNAPSHOT_EVERY)) + SNAPSHOT_EVERY
        assert worst[events] <= bound, (events, worst[events], bound)
        store.close()
    assert worst[100_000] <= 48
    assert worst[100_000] - worst[1_000] <= math.ceil(math.log2(100))


# --- a store from before snapshots: backfilled a little per commit -------------------------
def _snapshot_items(store: PartitionStore) -> dict[bytes, bytes]:
    return dict(store.scan(*family_range(SNAPSHOTS)))


def test_an_older_store_answers_exactly_and_is_backfilled_to_the_same_snapshots(store):
    table = PropertyTable(store, snapshot_every=4)
    histories = {
        prop: applied_history(table, prop, [("created", 0, {"price": 0})]
                              + [("updated", 5, {"price": i}) for i in range(1, n)])
        for prop, n in [("a", 50), ("b", 3), ("c\x1fd", 41), ("日本", 17)]
    }
    store.put(snapshots.PROGRESS_KEY, snapshots.DONE)
    commit(store, None)
    original = _snapshot_items(store)
    assert len(original) == 12 + 0 + 10 + 4
    for key in original:
        store.delete(key)
    store.delete(snapshots.PROGRESS_KEY)
    commit(store, None)
    assert _snapshot_items(store) == {}
    for prop, history in histories.items():  # without snapshots: the whole fold, still exact
        for dt in (0, 7, 52, 1000):
            assert state_at(table, prop, T0 + dt) == rebuild(history, T0 + dt)
    steps = 0
    while snapshots.step(table, store, budget=10):
        steps += 1
        if steps == 3:  # a crash: what the third step wrote is lost, the next resumes
            store.discard_pending()
            continue
        commit(store, None)
        assert steps < 50
    assert snapshots.is_done(store.get(snapshots.PROGRESS_KEY))
    assert _snapshot_items(store) == original
    assert steps >= 111 // 12  # at most ``budget`` events and a snapshot interval per step
    for prop, history in histories.items():
        for dt in (0, 7, 52, 1000):
            assert state_at(table, prop, T0 + dt) == rebuild(history, T0 + dt)


def test_a_fresh_store_is_marked_done_at_its_first_commit_and_then_costs_nothing(store):
    processor = _long_history(store, 3)
    assert snapshots.is_done(store.get(snapshots.PROGRESS_KEY))
    assert processor.before_commit(T0) is False  # nothing new: nothing to commit
