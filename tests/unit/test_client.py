"""app/client.py against a stand-in worker: the view is sent keyed by its property, the hour
asked for with the record's own metadata as ``atLeast``, and anything but 200 raised with
its status and body."""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from app.client import AnswerError, Written, view_and_count

VIEW = {"eventId": "e-1", "propertyId": "a/b", "userId": "u-1", "timestamp": "2026-11-20T14:03:07Z"}


class Producer:
    """Records what is sent; answers with the metadata a broker would."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []

    async def send_and_wait(self, topic: str, key: bytes, value: bytes) -> SimpleNamespace:
        self.sent.append((topic, key, value))
        return SimpleNamespace(topic=topic, partition=3, offset=41 + len(self.sent))


async def worker(status: int, body: dict, seen: list) -> TestServer:  # noqa: ANN001
    async def hour(request: web.Request) -> web.Response:
        seen.append((request.raw_path, dict(request.query)))
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/api/properties/{prop}/views", hour)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_a_view_is_produced_then_its_hour_asked_with_its_own_metadata():
    seen: list = []
    server = await worker(200, {"views": 1, "position": {"committed": True}}, seen)
    producer = Producer()
    try:
        async with aiohttp.ClientSession() as session:
            written, answer = await view_and_count(
                producer, session, str(server.make_url("/")), VIEW, topic="views", timeout_s=2.5
            )
    finally:
        await server.close()
    assert written == Written("views", 3, 42) and written.bound == "views:3:42"
    assert producer.sent == [("views", b"a/b", orjson.dumps(VIEW))]
    assert answer["views"] == 1
    path, query = seen[0]
    assert path.startswith("/api/properties/a%2Fb/views?")
    assert query == {"hour": VIEW["timestamp"], "atLeast": "views:3:42",
                     "consistency": "committed", "timeout": "2.5"}


async def test_a_bound_not_reached_raises_with_the_status_and_the_position_reached():
    seen: list = []
    server = await worker(504, {"error": "not reached", "position": {"offsets": {}}}, seen)
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(AnswerError) as caught:
                await view_and_count(Producer(), session, str(server.make_url("/")), VIEW,
                                     consistency="latest")
    finally:
        await server.close()
    assert caught.value.status == 504 and caught.value.body["error"] == "not reached"
    assert seen[0][1]["consistency"] == "latest"


async def test_a_standby_answer_comes_back_as_the_worker_gave_it():
    seen: list = []
    body = {"views": 1, "stale": True, "lag": 4, "position": {"committed": True}}
    server = await worker(200, body, seen)
    try:
        async with aiohttp.ClientSession() as session:
            _, answer = await view_and_count(Producer(), session, str(server.make_url("/")), VIEW,
                                             consistency="standby")
    finally:
        await server.close()
    assert answer == body and seen[0][1]["consistency"] == "standby"
