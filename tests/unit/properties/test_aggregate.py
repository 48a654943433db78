"""The aggregate's rules: every transition, every refusal, and folding = rebuilding."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.models.events import PropertyEvent
from app.properties.aggregate import (
    LISTED,
    RENTED,
    PropertyState,
    Refused,
    StoredEvent,
    apply,
    rebuild,
)

T0 = 1_700_000_000_000
CREATED = {"title": "Loft", "city": "Lyon", "price": 1850, "bedrooms": 2}


def ev(kind: str, ts: int = T0, data: dict | None = None, eid: str = "e", prop: str = "p1"):
    return PropertyEvent(eid, kind, ts, prop, dict(data or {}))


def created(ts: int = T0) -> PropertyState:
    state = apply(None, ev("created", ts, CREATED))
    assert isinstance(state, PropertyState)
    return state


def test_created_starts_a_listed_property_at_version_1():
    state = created()
    assert state == PropertyState("p1", LISTED, 1, T0, T0, CREATED)
    assert state.to_wire() == {
        "propertyId": "p1", "status": "listed", "version": 1,
        "createdAt": "2023-11-14T22:13:20Z", "updatedAt": "2023-11-14T22:13:20Z",
        "data": CREATED,
    }


def test_updated_merges_its_fields_and_counts_a_version():
    state = apply(created(), ev("updated", T0 + 5, {"price": 1790}))
    assert state == PropertyState("p1", LISTED, 2, T0, T0 + 5, {**CREATED, "price": 1790})


def test_rented_sets_status_rented_with_rent_and_tenant():
    state = apply(created(), ev("rented", T0 + 5, {"rent": 1790, "tenantId": "t-1"}))
    assert state.status == RENTED and state.version == 2
    assert state.data == {**CREATED, "rent": 1790, "tenantId": "t-1"}
    assert state.summary() == {"title": "Loft", "city": "Lyon", "status": RENTED, "price": 1850}


def test_an_update_of_a_rented_property_keeps_it_rented_unless_it_relists():
    rented = apply(created(), ev("rented", T0 + 1, {"rent": 1790, "tenantId": "t-1"}))
    still = apply(rented, ev("updated", T0 + 2, {"title": "Loft 2"}))
    assert still.status == RENTED and still.data["title"] == "Loft 2" and still.version == 3
    relisted = apply(still, ev("updated", T0 + 3, {"status": "listed", "price": 1900}))
    assert relisted.status == LISTED and relisted.version == 4
    assert relisted.data == {**CREATED, "title": "Loft 2", "price": 1900}  # tenant gone
    again = apply(relisted, ev("rented", T0 + 4, {"tenantId": "t-2"}))
    assert again.status == RENTED and again.version == 5


def test_status_listed_on_a_listed_property_changes_nothing_but_the_version():
    state = apply(created(), ev("updated", T0, {"status": "listed"}))
    assert state.status == LISTED and state.version == 2 and state.data == CREATED


@pytest.mark.parametrize("state, event, why", [
    (None, ev("updated", data={"price": 1}), "before property.created"),
    (None, ev("rented"), "before property.created"),
    ("created", ev("created", data=CREATED), "created again"),
    ("rented", ev("rented", T0 + 9), "while the property is rented"),
    ("created", ev("updated", data={"status": "rented"}), "may only set status"),
    ("created", ev("updated", data={"status": "sold"}), "may only set status"),
    ("created", ev("updated", T0 - 1, {"price": 1}), "before the property's last event"),
    ("rented", ev("updated", T0, {"status": "listed"}), "before the property's last event"),
])
def test_every_rule_break_is_refused_and_says_why(state, event, why):
    before = {
        None: None,
        "created": created(),
        "rented": apply(created(), ev("rented", T0 + 1)),
    }[state]
    result = apply(before, event)
    assert isinstance(result, Refused) and why in result


def test_rebuild_as_of_a_time_applies_the_events_up_to_it():
    events = [ev("created", T0, CREATED), ev("updated", T0 + 10, {"price": 1}),
              ev("rented", T0 + 20, {"tenantId": "t"})]
    history = []
    state = None
    for e in events:
        state = apply(state, e)
        history.append(StoredEvent(state.version, e))
    assert rebuild(history, T0 - 1) is None
    assert rebuild(history, T0).version == 1
    assert rebuild(history, T0 + 19).data["price"] == 1
    assert rebuild(history, T0 + 19).status == LISTED
    assert rebuild(history, T0 + 20) == rebuild(history) == state


def test_stored_forms_round_trip():
    state = apply(created(), ev("rented", T0 + 1, {"rent": 1.5, "tenantId": "日本:/%"}))
    assert PropertyState.from_bytes(state.to_bytes()) == state
    stored = StoredEvent(2, ev("rented", T0 + 1, {"rent": 1.5}, eid="a:b", prop="x/y"))
    assert StoredEvent.from_bytes(stored.to_bytes()) == stored
    assert stored.to_wire()["eventType"] == "property.rented"


# --- any sequence ------------------------------------------------------------------------
_data = st.fixed_dictionaries({}, optional={
    "title": st.text(max_size=5), "price": st.integers(0, 5000),
    "status": st.sampled_from(["listed", "rented", "sold"]),
    "tenantId": st.sampled_from(["t1", "t2"]), "rent": st.integers(0, 5000),
})
_events = st.lists(
    st.tuples(st.sampled_from(["created", "updated", "rented"]), st.integers(0, 50), _data),
    max_size=25,
)


@settings(max_examples=300, deadline=None)
@given(_events, st.integers(-5, 60))
def test_no_sequence_raises_and_the_history_rebuilds_every_state(raw, as_of):
    state = None
    history: list[StoredEvent] = []
    states_by_time: list[tuple[int, PropertyState]] = []
    for i, (kind, dt, data) in enumerate(raw):
        if kind != "updated":
            data = {k: v for k, v in data.items() if k != "status"}
        event = ev(kind, T0 + dt, data, eid=f"e{i}")
        result = apply(state, event)
        if isinstance(result, Refused):
            continue
        assert result.version == (state.version + 1 if state else 1)
        state = result
        history.append(StoredEvent(state.version, event))
        states_by_time.append((event.timestamp_ms, state))
    assert rebuild(history) == state
    # asOf: the last state whose event time is at or before it (the history is in time order)
    expected = None
    for ts, s in states_by_time:
        if ts <= T0 + as_of:
            expected = s
    assert rebuild(history, T0 + as_of) == expected
    if state is not None:
        assert rebuild(history, state.updated_at_ms) == state
        assert [h.event.timestamp_ms for h in history] == sorted(h.event.timestamp_ms for h in history)
