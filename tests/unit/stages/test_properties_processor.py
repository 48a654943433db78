"""PropertiesProcessor over a real RocksDB (state, history, dedupe, dead letters, replay),
and the views stage joined with it (property in insights, rented_property_demand)."""

from __future__ import annotations

import orjson
import pytest

from app.engine.transactions import Outbox
from app.properties.aggregate import LISTED, RENTED
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.stages.views import ViewsConfig, ViewsProcessor
from app.tables.properties import PropertyTable
from app.windows import HOUR_MS, iso_ms, parse_iso

from .harness import Driver

P = 5
NOW = parse_iso("2026-12-01T00:00:00Z")
H14 = parse_iso("2026-11-20T14:00:00Z")
DLQ = "property.events.dlq"
INSIGHTS = "analytics.insights"
MIN = 60_000


def event_bytes(eid: str, kind: str, ts: int, prop: str = "prop-1", **data) -> bytes:
    return orjson.dumps({
        "eventId": eid, "eventType": f"property.{kind}", "version": "1.0",
        "timestamp": iso_ms(ts), "propertyId": prop, "data": data,
    })


class PropDriver(Driver):
    def event(self, eid: str, kind: str, ts: int, prop: str = "prop-1", **data) -> int:
        return self.send(event_bytes(eid, kind, ts, prop, **data), prop.encode())


@pytest.fixture
def make(open_store):
    def make_(store=None) -> PropDriver:
        cfg = PropertiesConfig.from_settings(Settings())
        proc = PropertiesProcessor(P, store or open_store("props-005"), Outbox(), cfg)
        return PropDriver(proc, NOW)

    return make_


def created(d: PropDriver, prop: str = "prop-1", ts: int = H14, eid: str = "c1") -> None:
    d.event(eid, "created", ts, prop, title="Loft", city="Lyon", price=1850, bedrooms=2)


def dead_letters(d: PropDriver) -> list[tuple[int, str]]:
    return [
        (int(dict(r.headers)["dlq.origin.offset"]), dict(r.headers)["dlq.reason"].decode())
        for r in [*d.published, *d.pending(DLQ)] if r.topic == DLQ
    ]


def test_events_build_the_state_and_the_history(make):
    d = make()
    created(d)
    d.event("u1", "updated", H14 + MIN, price=1790)
    d.event("r1", "rented", H14 + 2 * MIN, rent=1790, tenantId="t-9")
    table = PropertyTable(d.proc.store)
    state = table.state("prop-1")
    assert (state.status, state.version, state.data["price"]) == (RENTED, 3, 1790)
    assert [(h.version, h.event.event_id) for h in table.history("prop-1")] == [
        (1, "c1"), (2, "u1"), (3, "r1")]
    assert [h.version for h in table.history("prop-1", after_version=1)] == [2, 3]
    assert d.proc.state_at("prop-1", H14 + MIN + 30_000).status == LISTED
    assert d.proc.state_at("prop-1", H14 + MIN + 30_000).version == 2
    assert d.proc.state_at("prop-1", H14 - 1) is None
    assert d.proc.state_at("prop-1", NOW) == state


def test_rule_breaks_go_to_the_dlq_as_invalid_transition_and_change_nothing(make):
    d = make()
    d.event("u0", "updated", H14, price=1)  # before created
    created(d)
    created(d, eid="c2")  # created twice
    d.event("r1", "rented", H14 + MIN)
    d.event("r2", "rented", H14 + 2 * MIN)  # rented twice
    d.event("u1", "updated", H14, price=5)  # back in time
    d.send(b"{", b"prop-1")
    assert dead_letters(d) == [(0, "invalid_transition"), (2, "invalid_transition"),
                               (4, "invalid_transition"), (5, "invalid_transition"),
                               (6, "malformed_json")]
    assert PropertyTable(d.proc.store).state("prop-1").version == 2


def test_a_duplicate_event_id_is_skipped_per_property(make):
    d = make()
    created(d)
    d.event("u1", "updated", H14 + 1, price=1)
    d.event("u1", "updated", H14 + 2, price=2)
    created(d, prop="prop-2", eid="u1")  # same id, another property: its own
    table = PropertyTable(d.proc.store)
    assert table.state("prop-1").data["price"] == 1 and table.state("prop-1").version == 2
    assert table.state("prop-2").version == 1
    assert d.proc.outcomes["property_duplicate"] == 1 and not dead_letters(d)


def test_after_a_crash_the_replay_gives_the_same_state_and_dead_letters_once(make, open_store):
    d = make()
    created(d)
    d.commit()
    d.event("u1", "updated", H14 + 1, price=1)
    d.event("r0", "created", H14 + 2)  # invalid: missing fields
    d.crash()
    d.proc.store.close()
    again = make(open_store("props-005"))
    assert again.proc.applied_offset == 0
    again.event("u1", "updated", H14 + 1, price=1)
    again.send(event_bytes("r0", "created", H14 + 2), b"prop-1")
    again.proc.process(1, b"prop-1", event_bytes("u1", "updated", H14 + 1, price=9), NOW)  # replay
    again.commit()
    assert PropertyTable(again.proc.store.committed()).state("prop-1").data["price"] == 1
    assert dead_letters(again) == [(2, "missing_field")]


def test_hostile_ids_keep_separate_aggregates(make):
    d = make()
    ids = ["a:b", "a", "a:b:c", "x/y", "50%", "日本", "a\x00"[:1] + "b"]
    for i, prop in enumerate(ids):
        d.event(f"c{i}", "created", H14, prop, title=prop, city="c", price=i)
    table = PropertyTable(d.proc.store)
    assert [table.state(p).data["price"] for p in ids] == list(range(len(ids)))
    assert sorted(table.property_ids()) == sorted(ids)


# --- the views stage, joined -----------------------------------------------------------
def views_with(props: PropDriver, open_store, **settings) -> Driver:
    cfg = ViewsConfig.from_settings(Settings(**settings))
    proc = ViewsProcessor(P, open_store("views-005"), Outbox(), cfg, {}.get, props.proc.state_at)
    return Driver(proc, NOW)


def insights(d: Driver, kind: str | None = None) -> list[dict]:
    docs = [orjson.loads(r.value) for r in d.pending(INSIGHTS)]
    return [doc for doc in docs if kind is None or doc["type"] == kind]


def test_rented_property_demand_once_per_hour_for_views_at_rented_times(make, open_store):
    props = make()
    created(props)
    props.event("r1", "rented", H14 + 30 * MIN, rent=1790, tenantId="t")
    views = views_with(props, open_store, spike_min_views=3)
    demand = "rented_property_demand"
    for i in range(4):  # before the rent: counted, no demand (status listed at those times)
        views.view(f"v{i}", H14 + i * MIN, user=f"u{i}")
    assert insights(views, demand) == []
    views.view("v9", H14 + 31 * MIN)  # rented at its time, 5 views >= 3
    views.view("v10", H14 + 32 * MIN)  # once per hour
    docs = insights(views, demand)
    assert [d["insightId"] for d in docs] == [f"rented_property_demand:prop-1:{iso_ms(H14)}"]
    assert docs[0]["metrics"] == {"views": 5, "uniqueUsers": 5}
    assert docs[0]["property"] == {"title": "Loft", "city": "Lyon", "status": "rented", "price": 1850}
    views.view("v11", H14 + HOUR_MS + 1)  # next hour: 1 view, under the threshold
    assert len(insights(views, demand)) == 1



def test_a_spike_carries_the_property_as_of_the_view(make, open_store):
    props = make()
    created(props)
    props.event("u1", "updated", H14 + 2 * MIN, price=1700)
    views = views_with(props, open_store, spike_min_views=2)
    views.view("v1", H14 + MIN)
    views.view("v2", H14 + MIN, user="u2")  # the spike, at a time before the price change
    (doc,) = insights(views)
    assert doc["type"] == "property_hourly_spike"
    assert doc["property"] == {"title": "Loft", "city": "Lyon", "status": "listed", "price": 1850}


def test_views_of_an_unknown_property_make_insights_without_property(make, open_store):
    views = views_with(make(), open_store, spike_min_views=2)
    views.view("v1", H14, prop="ghost")
    views.view("v2", H14, prop="ghost", user="u2")
    (doc,) = insights(views)
    assert "property" not in doc and doc["type"] == "property_hourly_spike"


def test_the_stage_outcomes_reach_the_metrics(make):
    from app.metrics import Metrics

    d = make()
    created(d)
    created(d)  # the same eventId: a duplicate
    d.event("x", "rented", H14 - 1)  # back in time: refused
    metrics = Metrics()
    metrics.record_outcomes("property.events", d.proc.outcomes)
    value = metrics.registry.get_sample_value
    assert value("property_analytics_property_events_total", {"outcome": "applied"}) == 1
    assert value("property_analytics_property_events_total", {"outcome": "duplicate"}) == 1
    assert value("property_analytics_events_rejected_total",
                 {"topic": "property.events", "reason": "invalid_transition"}) == 1
