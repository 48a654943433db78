"""Positions over HTTP in this process (no broker): committed and latest answers of a views
partition with pending writes, ``atLeast`` answered at the commit that reaches it (no
polling), 504 with the position reached, the bound and the remaining time forwarded to the
owner, and the owner's 504 and position header relayed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import orjson
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from app.engine.store import PartitionStore, rocksdb_options
from app.engine.transactions import Outbox
from app.main import create_app
from app.readmodels.partials import position_key, position_partial
from app.settings import Settings
from app.stages.views import ViewsConfig, ViewsProcessor
from app.web.consistency import codec_of
from app.web.routing import partition_of
from app.windows import iso_ms, parse_iso

from ..conftest import SMALL
from .test_requests import Member

NOW = parse_iso("2026-11-20T14:30:00Z")
HOUR = "2026-11-20T14:00:00Z"
PROP = "prop-1"


def view(i: int) -> bytes:
    return orjson.dumps({"eventId": f"e-{i}", "propertyId": PROP, "userId": f"u-{i}",
                         "timestamp": iso_ms(NOW - 1000 + i)})


class Partition:
    """A views partition open on the worker: records applied, then committed on demand."""

    def __init__(self, proc: ViewsProcessor, moved) -> None:  # noqa: ANN001
        self.proc = proc
        self.moved = moved
        self.next = 0

    def apply(self, n: int) -> None:
        for _ in range(n):
            self.proc.process(self.next, PROP.encode(), view(self.next), NOW)
            self.next += 1
        self.moved.notify()

    def commit(self) -> None:
        self.proc.before_commit(NOW)
        self.proc.store.seal()
        self.proc.store.apply_sealed(self.next)
        self.moved.notify()


@pytest_asyncio.fixture
async def worker(tmp_path) -> AsyncIterator[tuple[TestClient, Partition, object]]:
    settings = Settings(app_id="web-pos", worker_data_dir=tmp_path / "data", topic_partitions=4)
    app = create_app(settings)
    app.web.init_server()
    owned = app.runtime.views.owned
    p = partition_of(PROP, settings.topic_partitions)
    store = PartitionStore(tmp_path / "views", rocksdb_options(SMALL, SMALL))
    proc = ViewsProcessor(p, store, Outbox(), ViewsConfig.from_settings(settings),
                          lambda user: None)
    owned._open[p] = proc
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    yield client, Partition(proc, owned.moved), app
    await client.close()
    store.close()
    owned._open.clear()


async def get(client: TestClient, path: str) -> tuple[int, dict, str | None]:
    response = await client.get(URL(path, encoded=True))
    assert response.content_type == "application/json", (path, response.status)
    return response.status, orjson.loads(await response.read()), response.headers.get("X-Position")


def offset_of(body: dict, app) -> int:  # noqa: ANN001
    settings = app.runtime.settings
    return body["position"]["offsets"][settings.views_topic][str(partition_of(PROP, 4))]


async def test_committed_and_latest_answers_say_where_they_stand(worker):
    client, part, app = worker
    part.apply(3)
    part.commit()
    part.apply(2)  # applied, not committed
    status, committed, header = await get(client, f"/api/properties/{PROP}/views?hour={HOUR}")
    assert status == 200 and committed["views"] == 3
    assert committed["position"]["committed"] is True and offset_of(committed, app) == 2
    assert header == committed["position"]["token"]
    decoded = codec_of(app.runtime.settings).decode(header)
    assert decoded.offsets == {(app.runtime.settings.views_topic, partition_of(PROP, 4)): 2}
    status, latest, _ = await get(client, f"/api/properties/{PROP}/views?hour={HOUR}&consistency=latest")
    assert status == 200 and latest["views"] == 5
    assert latest["position"]["committed"] is False and offset_of(latest, app) == 4


async def test_at_least_is_answered_at_the_commit_that_reaches_it(worker):
    client, part, app = worker
    part.apply(1)
    part.commit()
    topic = app.runtime.settings.views_topic
    p = partition_of(PROP, 4)

    async def later() -> None:
        await asyncio.sleep(0.2)
        part.apply(4)  # applied: enough for latest, not for committed
        await asyncio.sleep(0.2)
        part.commit()

    task = asyncio.ensure_future(later())
    started = time.monotonic()
    status, body, _ = await get(client, f"/api/properties/{PROP}/views?hour={HOUR}&atLeast={topic}:{p}:4")
    waited = time.monotonic() - started
    await task
    assert status == 200 and body["views"] == 5 and offset_of(body, app) == 4
    assert 0.35 < waited < 2  # woken by the commit itself


async def test_latest_at_least_is_answered_once_applied(worker):
    client, part, app = worker
    topic = app.runtime.settings.views_topic
    p = partition_of(PROP, 4)
    asyncio.get_running_loop().call_later(0.1, part.apply, 3)
    status, body, _ = await get(
        client, f"/api/properties/{PROP}/views?hour={HOUR}&atLeast={topic}:{p}:2&consistency=latest"
    )
    assert status == 200 and body["views"] == 3 and body["position"]["committed"] is False


async def test_a_position_not_reached_in_time_is_504_with_the_position_reached(worker):
    client, part, app = worker
    part.apply(2)
    part.commit()
    topic = app.runtime.settings.views_topic
    p = partition_of(PROP, 4)
    started = time.monotonic()
    status, body, header = await get(
        client, f"/api/properties/{PROP}/views?hour={HOUR}&atLeast={topic}:{p}:9&timeout=0.3"
    )
    assert status == 504 and f"{topic}[{p}]@9" in body["error"]
    assert offset_of(body, app) == 1 and header == body["position"]["token"]
    assert 0.25 < time.monotonic() - started < 2


async def test_bad_options_are_400(worker):
    client, _, _ = worker
    for query, fragment in [("atLeast=%%%", "atLeast"), ("atLeast=orders:1:2", "not a topic"),
                            ("consistency=soon", "consistency"), ("timeout=40", "timeout")]:
        status, body, _ = await get(client, f"/api/properties/{PROP}/views?hour={HOUR}&{query}")
        assert status == 400 and fragment in body["error"] and set(body) == {"error"}, body


async def test_the_bound_travels_with_the_forwarded_request_and_the_504_comes_back(tmp_path):
    member = Member()
    member.answer = (504, "application/json", b'{"error": "not reached", "position": {}}')
    await member.server.start_server()
    settings = Settings(app_id="web-pos-fwd", worker_data_dir=tmp_path / "d", topic_partitions=4)
    app = create_app(settings)
    app.web.init_server()
    topics = {settings.views_topic: set(range(4))}
    app.assignor.external_topics_metadata = lambda: {member.url: topics}
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    codec = codec_of(settings)
    p = partition_of(PROP, 4)
    try:
        status, body, _ = await get(
            client, f"/api/properties/{PROP}/views?hour={HOUR}&consistency=latest"
            f"&atLeast={settings.views_topic}:{p}:7&timeout=2",
        )
        assert status == 504 and body["error"] == "not reached"
        path = member.seen[-1][0]
        query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
        assert query["consistency"] == "latest"
        assert codec.decode(query["atLeast"]).offsets == {(settings.views_topic, p): 7}
        assert 1.5 < float(query["timeout"]) <= 2
    finally:
        await client.close()
        await member.server.close()


async def test_segment_weeks_and_users_carry_their_positions(worker):
    client, _, app = worker
    settings = app.runtime.settings
    partials = app.runtime.partials
    partials.apply(position_key(1), position_partial(41))
    status, body, _ = await get(client, "/api/segments/investor/weeks/2026-11-16")
    assert status == 200
    offsets = body["position"]["offsets"][settings.views_topic]
    assert offsets == {"0": -1, "1": 41, "2": -1, "3": -1}
    asyncio.get_running_loop().call_later(0.1, partials.apply, position_key(1), position_partial(50))
    status, body, _ = await get(
        client, f"/api/segments/investor/weeks/2026-11-16?atLeast={settings.views_topic}:1:45"
    )
    assert status == 200 and body["position"]["offsets"][settings.views_topic]["1"] == 50
    status, body, _ = await get(client, "/api/users/nobody")
    assert status == 404 and body["position"]["offsets"] == {settings.profiles_topic: {"0": -1}}


BOUND_TEXT = st.text(st.characters(codec=None, exclude_categories=())) | st.from_regex(
    r"\A[A-Za-z0-9_-]{0,30}\Z"
) | st.from_regex(r"\A[a-z.-]{1,20}:[0-9]{1,3}:[0-9-]{1,20}\Z")


@settings(max_examples=5, deadline=None)
@given(st.lists(BOUND_TEXT, min_size=20, max_size=20))
def test_any_at_least_text_over_http_is_an_answer_or_a_400(tmp_path_factory, texts):
    """Whatever a client sends as ``atLeast``, the worker answers it (200, or 504 past the
    timeout) or refuses it with a 400 JSON: never another status."""

    async def ask_all() -> list[tuple[int, dict]]:
        settings_ = Settings(app_id="web-pos-any", topic_partitions=4,
                             worker_data_dir=tmp_path_factory.mktemp("any"))
        app = create_app(settings_)
        app.web.init_server()
        client = TestClient(TestServer(app.web.web_app))
        await client.start_server()
        try:
            out = []
            for text in texts:
                query = urlencode({"atLeast": text, "timeout": "0"}, encoding="utf-8",
                                  errors="surrogatepass")
                for path in ("/api/users/u-1", "/api/segments/a/weeks/2026-11-16"):
                    status, body, _ = await get(client, f"{path}?{query}")
                    out.append((status, body))
            return out
        finally:
            await client.close()

    for status, body in asyncio.run(ask_all()):
        assert status in (200, 400, 404, 504), (status, body)
        if status == 400:
            assert set(body) == {"error"} and "atLeast" in body["error"]
        else:
            assert "position" in body
