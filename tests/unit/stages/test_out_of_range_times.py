"""The stages with a record whose time is a valid date in its own offset but outside years
0001-9999 in UTC: dead-lettered as ``bad_timestamp``, and the partition goes on. Before the
range check such a ``property.updated`` raised ValueError while its refusal was written (a
crash loop) and such a view was dead-lettered as ``late``."""

from __future__ import annotations

import orjson

from app.engine.transactions import Outbox
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.stages.views import ViewsConfig, ViewsProcessor

from .harness import Driver
from .test_properties_processor import DLQ as PROPERTY_DLQ
from .test_properties_processor import H14, NOW, PropDriver, created, dead_letters

BEFORE_YEAR_1 = "0001-01-01T00:00:00+00:01"
AFTER_YEAR_9999 = "9999-12-31T23:59:59-00:01"


def raw_event(eid: str, kind: str, timestamp: str, **data) -> bytes:
    return orjson.dumps({"eventId": eid, "eventType": f"property.{kind}", "version": "1.0",
                         "timestamp": timestamp, "propertyId": "prop-1", "data": data})


def test_an_update_before_year_1_is_bad_timestamp_and_the_property_goes_on(open_store):
    proc = PropertiesProcessor(5, open_store("props"), Outbox(),
                               PropertiesConfig.from_settings(Settings()))
    d = PropDriver(proc, NOW)
    created(d)
    bad = d.send(raw_event("u-old", "updated", BEFORE_YEAR_1, price=1), b"prop-1")
    bad_created = d.send(raw_event("c-old", "created", BEFORE_YEAR_1, title="t", city="c",
                                   price=1), b"prop-1")
    d.event("u1", "updated", H14 + 60_000, price=1790)
    assert dead_letters(d) == [(bad, "bad_timestamp"), (bad_created, "bad_timestamp")]
    detail = dict(d.pending(PROPERTY_DLQ)[0].headers)["dlq.detail"].decode()
    assert BEFORE_YEAR_1 in detail and "outside" in detail
    state = proc.table.state("prop-1")
    assert (state.version, state.data["price"]) == (2, 1790)


def test_a_view_after_year_9999_is_bad_timestamp_not_late(open_store):
    cfg = ViewsConfig.from_settings(Settings())
    proc = ViewsProcessor(3, open_store("views"), Outbox(), cfg, {}.get)
    d = Driver(proc, NOW)
    d.view("v1", H14)
    for stamp in (BEFORE_YEAR_1, AFTER_YEAR_9999):
        doc = {"eventId": "v-" + stamp, "eventType": "property.viewed", "timestamp": stamp,
               "propertyId": "prop-1", "userId": "user-1"}
        d.send(orjson.dumps(doc), b"prop-1")
    reasons = [dict(r.headers)["dlq.reason"] for r in d.pending(cfg.dlq_topic)]
    assert reasons == [b"bad_timestamp", b"bad_timestamp"]
    assert proc.outcomes["rejected:bad_timestamp"] == 2 and proc.outcomes["rejected:late"] == 0
