"""Ids in URLs follow the input rule (``bad_id``): one holding a C1 control, a bidirectional
control or an invisible format character is answered 400 with a JSON error naming the
parameter, on every route that takes an id (no broker: the parameters are checked first)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import orjson
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from app.main import create_app
from app.settings import Settings

# id -> what the error says
BAD = {"prop\u00851": "control character (U+0085)",
       "1prop\u202e": "bidirectional control character (U+202E)",
       "\u200bprop": "invisible format character (U+200B)",
       "prop\ufeff": "invisible format character (U+FEFF)"}
ROUTES = [
    ("/api/properties/{}/views?hour=2026-11-20T14:00:00Z", "propertyId"),
    ("/api/properties/{}/views/history?from=2026-11-20T14:00:00Z&to=2026-11-20T16:00:00Z",
     "propertyId"),
    ("/api/properties/{}", "propertyId"),
    ("/api/properties/{}/events", "propertyId"),
    ("/api/segments/{}/weeks/2026-11-16", "segment"),
    ("/api/users/{}", "userId"),
]


@pytest_asyncio.fixture
async def client(tmp_path) -> AsyncIterator[TestClient]:
    app = create_app(Settings(app_id="web-url-ids", worker_data_dir=tmp_path / "data"))
    app.web.init_server()
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    yield client
    await client.close()


@pytest.mark.parametrize("ident", BAD)
@pytest.mark.parametrize(("route", "name"), ROUTES)
async def test_an_id_with_a_forbidden_character_is_400_json(client, ident, route, name):
    path = route.format(quote(ident, safe=""))
    response = await client.get(URL(path, encoded=True))
    body = orjson.loads(await response.read())
    assert response.status == 400 and response.content_type == "application/json", (path, body)
    assert set(body) == {"error"} and name in body["error"] and BAD[ident] in body["error"]
