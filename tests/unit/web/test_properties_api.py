"""The property endpoints in this process (no broker): the aggregate, ``asOf``, the history
pages, 404/400 JSON, hostile ids, and forwarding to the owner of a partition."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.main import create_app
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.web.routing import partition_of, quote_segment
from app.windows import iso_ms, parse_iso

from ..conftest import SMALL
from .test_requests import Member
from app.engine.store import rocksdb_options

T0 = parse_iso("2026-11-20T14:00:00Z")
NOW = parse_iso("2026-12-01T00:00:00Z")
HOSTILE = ["prop-812", "a:b", "x/y", "50%", "日本", "..", "a b?c#d"]


def event(eid: str, kind: str, ts: int, prop: str, **data) -> bytes:
    return orjson.dumps({"eventId": eid, "eventType": f"property.{kind}", "timestamp": iso_ms(ts),
                         "propertyId": prop, "data": data})


@pytest_asyncio.fixture
async def worker(tmp_path) -> AsyncIterator[tuple[TestClient, object]]:
    """A worker's web server whose properties stage holds, committed, for each id of
    HOSTILE: created at T0, updated (price) at T0+1h, rented at T0+2h."""
    settings = Settings(app_id="web-props", worker_data_dir=tmp_path / "data", topic_partitions=4)
    app = create_app(settings)
    app.web.init_server()
    owned = app.runtime.properties.owned
    config = PropertiesConfig.from_settings(settings)
    procs: dict[int, PropertiesProcessor] = {}
    offsets: dict[int, int] = {}
    for prop in HOSTILE:
        p = partition_of(prop, settings.topic_partitions)
        if p not in procs:
            store = PartitionStore(tmp_path / f"props-{p}", rocksdb_options(SMALL, SMALL))
            procs[p] = PropertiesProcessor(p, store, Outbox(), config)
            owned._open[p] = procs[p]
            offsets[p] = 0
        for eid, kind, dt, data in [("c", "created", 0, {"title": prop, "city": "Lyon", "price": 1850}),
                                    ("u", "updated", 1, {"price": 1790}),
                                    ("r", "rented", 2, {"tenantId": "t1", "rent": 1790})]:
            procs[p].process(offsets[p], prop.encode(), event(eid, kind, T0 + dt * 3_600_000, prop, **data), NOW)
            offsets[p] += 1
    for proc in procs.values():
        proc.before_commit(NOW)
        proc.store.seal()
        proc.store.apply_sealed(1)
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    yield client, app
    await client.close()
    for proc in procs.values():
        proc.store.close()
    owned._open.clear()


async def get_json(client: TestClient, path: str) -> tuple[int, dict]:
    """``(status, body)``, the body without its position (tests/unit/web/test_positions_api.py)."""
    response = await client.get(URL(path, encoded=True))
    assert response.content_type == "application/json", (path, response.status)
    body = orjson.loads(await response.read())
    body.pop("position", None)
    return response.status, body


@pytest.mark.parametrize("prop", HOSTILE)
async def test_the_current_state_of_any_valid_id(worker, prop):
    client, _ = worker
    status, body = await get_json(client, f"/api/properties/{quote_segment(prop)}")
    assert status == 200, body
    assert body == {"propertyId": prop, "status": "rented", "version": 3,
                    "createdAt": "2026-11-20T14:00:00Z", "updatedAt": "2026-11-20T16:00:00Z",
                    "data": {"title": prop, "city": "Lyon", "price": 1790, "rent": 1790,
                             "tenantId": "t1"}}


@pytest.mark.parametrize("as_of, version, status_, price", [
    ("2026-11-20T14:00:00Z", 1, "listed", 1850),
    ("2026-11-20T15:59:59.999Z", 2, "listed", 1790),
    ("2026-11-20T16:00:00Z", 3, "rented", 1790),
    ("2030-01-01T00:00:00Z", 3, "rented", 1790),
])
async def test_as_of_rebuilds_the_state_at_that_time(worker, as_of, version, status_, price):
    client, _ = worker
    status, body = await get_json(client, f"/api/properties/a%3Ab?asOf={as_of}")
    assert status == 200
    assert (body["version"], body["status"], body["data"]["price"]) == (version, status_, price)
    assert body["asOf"] == as_of


async def test_404_json_for_a_property_never_created_or_not_yet_created(worker):
    client, _ = worker
    owned = {partition_of(p, 4) for p in HOSTILE}
    nobody = next(f"nobody-{i}" for i in range(100) if partition_of(f"nobody-{i}", 4) in owned)
    status, body = await get_json(client, f"/api/properties/{nobody}")
    assert status == 404 and nobody in body["error"]
    status, body = await get_json(client, f"/api/properties/{nobody}/events")
    assert status == 404 and set(body) == {"error"}
    status, body = await get_json(client, "/api/properties/a%3Ab?asOf=2026-11-20T13:59:59Z")
    assert status == 404 and "did not exist" in body["error"]


async def test_history_pages_oldest_first(worker):
    client, _ = worker
    status, body = await get_json(client, "/api/properties/x%2Fy/events?limit=2")
    assert status == 200
    assert [e["version"] for e in body["events"]] == [1, 2] and body["nextAfterVersion"] == 2
    assert body["events"][0] == {"version": 1, "eventId": "c", "eventType": "property.created",
                                 "timestamp": "2026-11-20T14:00:00Z", "schemaVersion": "1.0",
                                 "data": {"title": "x/y", "city": "Lyon", "price": 1850}}
    status, body = await get_json(client, "/api/properties/x%2Fy/events?afterVersion=2&limit=2")
    assert [e["eventType"] for e in body["events"]] == ["property.rented"]
    assert body["nextAfterVersion"] is None
    status, body = await get_json(client, "/api/properties/x%2Fy/events?afterVersion=3")
    assert status == 200 and body["events"] == []


@pytest.mark.parametrize("path, fragment", [
    ("/api/properties/p?asOf=yesterday", "asOf"),
    ("/api/properties/p?asOf=10000-01-01T00:00:00Z", "asOf"),
    ("/api/properties/p/events?afterVersion=-1", "afterVersion"),
    ("/api/properties/p/events?afterVersion=%ff", "afterVersion"),
    ("/api/properties/p/events?limit=0", "limit"),
    ("/api/properties/p/events?limit=1001", "limit"),
    ("/api/properties/%ff", "propertyId: is not UTF-8"),
    ("/api/properties/a%00b/events", "propertyId: holds a control character"),
    (f"/api/properties/{'x' * 257}", "propertyId: is longer than 256"),
])
async def test_bad_parameters_are_400_json(worker, path, fragment):
    client, _ = worker
    status, body = await get_json(client, path)
    assert status == 400 and set(body) == {"error"} and fragment in body["error"], body


async def test_a_property_of_another_worker_is_forwarded_with_its_id_encoded(tmp_path):
    member = Member()
    await member.server.start_server()
    app = create_app(Settings(app_id="web-props-fwd", worker_data_dir=tmp_path / "d"))
    app.web.init_server()
    topic = app.runtime.settings.property_events_topic
    partitions = set(range(app.runtime.settings.topic_partitions))
    app.assignor.external_topics_metadata = lambda: {member.url: {topic: partitions}}
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        status, body = await get_json(client, "/api/properties/a%2Fb%3A%E6%97%A5?asOf=2026-11-20T14:00:00%2B01:00")
        assert (status, body) == (200, {"from": "member"})
        status, _ = await get_json(client, "/api/properties/a%2Fb/events?limit=5")
        assert [path for path, _ in member.seen] == [
            "/api/properties/a%2Fb%3A%E6%97%A5?asOf=2026-11-20T13%3A00%3A00Z",
            "/api/properties/a%2Fb/events?afterVersion=0&limit=5",
        ]
    finally:
        await client.close()
        await member.server.close()
