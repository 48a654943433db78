"""The worker's HTTP server in this process (no broker, faust not started): hostile requests
get 4xx JSON, every route sits behind the one auth middleware, forwarded requests carry a
peer signature and never the client's token, and a peer's bad answer is not passed on as
JSON. A stand-in member of the group (a plain aiohttp server) owns every partition."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from app.main import create_app
from app.settings import Settings
from app.web.auth import (
    PEER_MAX_AGE_MS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    audience_of,
    peer_headers,
    peer_problem,
)
from app.web.params import parse_hour, path_id
from app.web.routing import ROUTED_HEADER

TOKEN = "s3cret-token-for-tests"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
HOUR = "2026-11-20T14:00:00Z"


class Member:
    """A member of the group as seen from a worker: it advertises a URL and answers
    whatever it likes; it records what it was sent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.answer: tuple[int, str, bytes] = (200, "application/json", b'{"from": "member"}')
        self.server = TestServer(self._app())

    def _app(self) -> web.Application:
        async def any_get(request: web.Request) -> web.Response:
            self.seen.append((request.raw_path, dict(request.headers)))
            status, kind, body = self.answer
            return web.Response(status=status, body=body, content_type=kind)

        app = web.Application()
        app.router.add_get("/{tail:.*}", any_get)
        return app

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))


Start = Callable[..., Awaitable[TestClient]]


@pytest_asyncio.fixture
async def start(tmp_path) -> AsyncIterator[Start]:
    """start(member=None, **settings) -> a client of a worker's web server; with ``member``,
    that member owns every views partition."""
    clients: list[TestClient] = []

    async def start_(member: Member | None = None, **settings: object) -> TestClient:
        config = {"app_id": "web-unit", "worker_data_dir": tmp_path / "data", "api_token": TOKEN}
        app = create_app(Settings(**(config | settings)))
        app.web.init_server()  # faust's own blueprints, as a worker applies them
        if member is not None:
            await member.server.start_server()
            topic = app.runtime.settings.views_topic
            partitions = set(range(app.runtime.settings.topic_partitions))
            app.assignor.external_topics_metadata = lambda: {member.url: {topic: partitions}}
        client = TestClient(TestServer(app.web.web_app))
        await client.start_server()
        clients.append(client)
        return client

    yield start_
    for client in clients:
        await client.close()


async def get_json(client: TestClient, path: str, headers: dict | None = None) -> tuple[int, dict]:
    response = await client.get(URL(path, encoded=True), headers=headers or {})
    assert response.content_type == "application/json", (path, response.status, await response.text())
    return response.status, orjson.loads(await response.read())


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("/api/properties/p/views?hour=9999-12-31T23:00:00Z", "hour"),
        ("/api/properties/p/views?hour=0001-01-01T00:00:00%2B01:00", "hour"),
        ("/api/properties/p/views/history?from=9999-12-31T22:00:00Z&to=9999-12-31T23:30:00Z", "9999"),
        ("/api/segments/investor/weeks/9999-12-27", "weekStart"),
        ("/api/segments/investor/weeks/0001-01-01T00:00:00%2B01:00", "weekStart"),
        ("/api/dashboard?hour=9999-12-31T23:00:00Z", "hour"),
        ("/api/dashboard/local?hour=9999-12-31T23:00:00Z", "hour"),
        (f"/api/properties/%00%ff/views?hour={HOUR}", "propertyId: is not UTF-8"),
        (f"/api/properties/a%ffb/views?hour={HOUR}", "propertyId: is not UTF-8"),
        (f"/api/properties/a%00b/views?hour={HOUR}", "propertyId: holds a control character"),
        (f"/api/properties/{'x' * 257}/views?hour={HOUR}", "propertyId: is longer than 256"),
        (f"/api/properties/%7F/views/history?from={HOUR}&to=2026-11-20T15:00:00Z", "propertyId"),
        ("/api/segments/in%1Fvestor/weeks/2026-11-23", "segment: holds a control character"),
        ("/api/users/%ff", "userId: is not UTF-8"),
        ("/api/insights?limit=%ff", "limit"),
        ("/api/insights?type=%00", "type"),
    ],
)
async def test_hostile_parameters_are_400_json(start, path, fragment):
    client = await start()
    status, body = await get_json(client, path, GOOD)
    assert status == 400 and set(body) == {"error"} and fragment in body["error"], (status, body)


async def test_an_authorization_header_that_is_not_utf8_is_401_json(start):
    client = await start()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(
        b"GET /api/insights HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n"
    )
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    assert head.startswith(b"HTTP/1.1 401") and b"application/json" in head, head
    assert set(orjson.loads(body)) == {"error"}


async def test_every_route_is_behind_the_token_except_the_public_ones(start):
    client = await start()
    routes = {r.resource.canonical for r in client.server.app.router.routes()}
    public = {"/", "/health", "/ready", "/metrics", "/static/{name}"}
    assert public <= routes
    for route in sorted(routes - public) + ["/router/", "/router/topics", "/table/", "/nothing"]:
        path = route.replace("{", "").replace("}", "")  # a value for every placeholder
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, body = await get_json(client, path, headers)
            assert status == 401 and set(body) == {"error"}, (route, headers, status, body)
    for path in ("/health", "/metrics", "/", "/static/dashboard.css"):
        assert (await client.get(path)).status == 200, path


async def test_faust_router_pages_are_not_served(start):
    client = await start()
    for path in ("/router/", "/router/topics", "/router/views/", "/table/"):
        status, body = await get_json(client, path, GOOD)
        assert status == 404 and set(body) == {"error"}, (path, body)


IDS = ["a:b", "a/b", "50%", "a b", "日本の物件", "..", ".", "a+b", "~x_y-z.1", "?#&="]


async def test_forwarded_requests_carry_a_peer_signature_never_the_clients_token(start):
    member = Member()
    client = await start(member)
    key = Settings(api_token=TOKEN, app_id="web-unit").peer_key
    for ident in IDS:
        member.seen.clear()
        every_byte = "".join(f"%{b:02X}" for b in ident.encode())
        path = f"/api/properties/{every_byte}/views?hour=2026-11-20T14:35:00Z"
        status, body = await get_json(client, path, GOOD)
        assert (status, body) == (200, {"from": "member"}), ident
        [(raw_path, headers)] = member.seen
        assert "Authorization" not in headers and TOKEN not in str(headers)
        assert headers[ROUTED_HEADER]
        now = int(time.time() * 1000)
        assert peer_problem(key, "GET", audience_of(member.url), raw_path, headers, now) is None
        # The member reads the same id and hour the client asked for.
        segments = raw_path.split("?")[0].split("/")
        assert segments[:3] == ["", "api", "properties"] and segments[4:] == ["views"], raw_path
        assert path_id(segments[3]) == ident
        query = dict(URL(raw_path, encoded=True).query)
        assert parse_hour(query["hour"]) == parse_hour("2026-11-20T14:00:00Z")


async def test_history_and_dashboard_are_forwarded_signed_too(start):
    member = Member()
    client = await start(member)
    await get_json(client, f"/api/properties/a%2Fb/views/history?from={HOUR}&to=2026-11-20T16:00:00Z", GOOD)
    status, body = await get_json(client, "/api/dashboard", GOOD)
    assert status == 200
    assert [p.split("?")[0] for p, _ in member.seen] == ["/api/properties/a%2Fb/views/history", "/api/dashboard/local"]
    for _, headers in member.seen:
        assert "Authorization" not in headers and SIGNATURE_HEADER in headers and TIMESTAMP_HEADER in headers


@pytest.mark.parametrize(
    "answer, status",
    [
        ((500, "text/plain", b"500 Internal Server Error\n\nServer got itself in trouble"), 502),
        ((200, "text/html", b"<html>not json</html>"), 502),
        ((401, "application/json", b'{"error": "missing or wrong bearer token"}'), 502),
        ((503, "application/json", b'{"error": "partition 3 is not ready; retry shortly"}'), 503),
        ((404, "application/json", b'{"error": "no such thing"}'), 404),
    ],
)
async def test_a_members_answer_is_passed_on_only_as_the_json_it_is(start, answer, status):
    member = Member()
    member.answer = answer
    client = await start(member)
    # timeout: how long a 503 of the member is asked again before it is passed on
    got, body = await get_json(client, f"/api/properties/p/views?hour={HOUR}&timeout=0.5", GOOD)
    assert got == status and set(body) == {"error"}, (got, body)
    if status != 502:
        assert body == orjson.loads(answer[2])


@pytest.mark.parametrize(
    "body",
    [b"[]", b"not json", b'{"url": "x"}', b'{"url": 1, "top": [{"views": "many"}]}'],
)
async def test_a_members_malformed_dashboard_share_is_reported_not_merged(start, body):
    member = Member()
    member.answer = (200, "application/json", body)
    client = await start(member)
    status, summary = await get_json(client, "/api/dashboard", GOOD)
    assert status == 200
    [theirs] = [w for w in summary["workers"] if w["url"] == member.url]
    assert "error" in theirs and theirs["partitions"] == []
    assert summary["partitions"]["missing"] == list(range(12))


async def test_the_receiver_accepts_a_fresh_peer_signature_and_refuses_forged_or_old_ones(start):
    client = await start(worker_web_port=6070)  # advertises http://127.0.0.1:6070
    key = Settings(api_token=TOKEN, app_id="web-unit").peer_key
    me = audience_of("http://127.0.0.1:6070")
    path = "/api/insights?limit=5"
    now = int(time.time() * 1000)
    status, body = await get_json(client, path, peer_headers(key, "GET", me, path, now))
    assert (status, body) == (200, {"insights": []})
    refused = {
        "forged": {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: "0" * 64},
        "expired": peer_headers(key, "GET", me, path, now - PEER_MAX_AGE_MS - 5000),
        "for another worker": peer_headers(key, "GET", audience_of("http://127.0.0.1:6071"), path, now),
        "for another path": peer_headers(key, "GET", me, "/api/insights?limit=500", now),
        "with another key": peer_headers(b"x" * 32, "GET", me, path, now),
    }
    for why, headers in refused.items():
        status, body = await get_json(client, path, headers)
        assert status == 401 and set(body) == {"error"}, (why, status, body)
