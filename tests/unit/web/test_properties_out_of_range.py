"""The property endpoints after records timed outside years 0001-9999 in UTC: before the range
check a ``property.created`` stamped ``0001-01-01T00:00:00+00:01`` was stored, and
``GET /api/properties/{id}`` and ``/events`` answered 500 for good (its ``createdAt`` could not
be written). Now it is a dead letter: the property does not exist (404 JSON), and one created
validly is served as it was before the bad update."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import TestClient, TestServer

from app.engine.store import PartitionStore, rocksdb_options
from app.engine.transactions import Outbox
from app.main import create_app
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.web.routing import partition_of

from ..conftest import SMALL
from .test_properties_api import get_json

NOW = 1_795_183_387_120  # 2026-11-20T14:03:07.120Z
BEFORE_YEAR_1 = "0001-01-01T00:00:00+00:01"


def raw_event(eid: str, kind: str, timestamp: str, prop: str, **data) -> bytes:
    return orjson.dumps({"eventId": eid, "eventType": f"property.{kind}", "timestamp": timestamp,
                         "propertyId": prop, "data": data})


async def test_properties_timed_before_year_1_are_404_or_served_never_500(tmp_path):
    settings = Settings(app_id="web-props-range", worker_data_dir=tmp_path / "data",
                        topic_partitions=1)
    app = create_app(settings)
    app.web.init_server()
    owned = app.runtime.properties.owned
    assert partition_of("old", 1) == partition_of("kept", 1) == 0
    store = PartitionStore(tmp_path / "props-0", rocksdb_options(SMALL, SMALL))
    proc = PropertiesProcessor(0, store, Outbox(), PropertiesConfig.from_settings(settings))
    owned._open[0] = proc
    records = [
        ("old", raw_event("c0", "created", BEFORE_YEAR_1, "old", title="t", city="c", price=1)),
        ("kept", raw_event("c1", "created", "2026-11-20T14:00:00Z", "kept", title="t", city="c",
                           price=1850)),
        ("kept", raw_event("u1", "updated", BEFORE_YEAR_1, "kept", price=1)),
    ]
    for offset, (prop, raw) in enumerate(records):
        proc.process(offset, prop.encode(), raw, NOW)
    dead = [dict(h)["dlq.reason"] for _, _, h in proc.outbox.records[(settings.dlq_property_events_topic, 0)]]
    assert dead == [b"bad_timestamp", b"bad_timestamp"]
    proc.before_commit(NOW)
    store.seal()
    store.apply_sealed(1)
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        for path in ("/api/properties/old", "/api/properties/old/events"):
            status, body = await get_json(client, path)
            assert status == 404 and set(body) == {"error"}, (path, status, body)
        status, body = await get_json(client, "/api/properties/kept")
        assert status == 200 and (body["version"], body["data"]["price"]) == (1, 1850), body
        status, body = await get_json(client, "/api/properties/kept/events")
        assert status == 200 and [e["eventId"] for e in body["events"]] == ["c1"], body
    finally:
        await client.close()
        store.close()
        owned._open.clear()
