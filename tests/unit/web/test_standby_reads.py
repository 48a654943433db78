"""``?consistency=standby`` in this process (no broker): a standby copy kept here answers a
property's hour, marked stale with its lag and at its own position, when the partition is not
open here and its owner is unreachable or still opening it; never behind ``atLeast``, never
with an unknown lag; the owner's own answer is marked fresh; a property and its events from the
properties stage's copy; without a copy here, another member's; the copy's position and the
checks on it as pure functions over any offsets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from app.engine.applied import APPLIED_KEY
from app.engine.store import PartitionStore, rocksdb_options
from app.engine.transactions import Outbox
from app.main import create_app
from app.positions import Position
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.stages.views import ViewsConfig, ViewsProcessor
from app.web.routing import partition_of
from app.web.standby_reads import copy_position, marked, usable

from ..conftest import SMALL
from .test_positions_api import HOUR, NOW, PROP, Partition, get
from .test_properties_api import T0, event
from .test_requests import Member

TOPIC = "property.views"
P = partition_of(PROP, 4)
OFFSETS = st.integers(min_value=-1, max_value=2**40)


@dataclass
class Setup:
    client: TestClient
    copy: Partition  # the copy's state, written as its owner wrote it
    app: object
    member: Member


@pytest_asyncio.fixture
async def worker(tmp_path) -> AsyncIterator[Setup]:
    """A worker whose views partition of PROP is owned by ``member`` and copied here: the
    copy holds 3 committed views and 2 applied on top (its owner's pending, never in it)."""
    member = Member()
    await member.server.start_server()
    settings = Settings(app_id="web-standby", worker_data_dir=tmp_path / "data", topic_partitions=4)
    app = create_app(settings)
    app.web.init_server()
    topics = {settings.views_topic: set(range(4))}
    url = member.url  # kept: it stays the owner's address after its server closed
    app.assignor.external_topics_metadata = lambda: {url: topics}
    store = PartitionStore(tmp_path / "copy", rocksdb_options(SMALL, SMALL))
    proc = ViewsProcessor(P, store, Outbox(), ViewsConfig.from_settings(settings), lambda u: None)
    copy = Partition(proc, app.runtime.views.owned.moved)
    copy.apply(3)
    copy.commit()
    copy.apply(2)
    keeper = app.runtime.standbys
    keeper._stores[(app.runtime.views.owned.name, P)] = store
    keeper.lag[(app.runtime.views.owned.name, P)] = 7
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    yield Setup(client, copy, app, member)
    await client.close()
    await member.server.close()
    keeper._stores.clear()
    store.close()


def hour_path(query: str = "") -> str:
    return f"/api/properties/{PROP}/views?hour={HOUR}&consistency=standby{query}"


async def test_an_unreachable_owner_is_answered_for_by_the_copy_marked_stale(worker):
    await worker.member.server.close()  # the owner is gone: nothing listens at its address
    started = time.monotonic()
    status, body, header = await get(worker.client, hour_path())
    assert time.monotonic() - started < 2
    assert status == 200 and body["views"] == 3, body  # the copy's committed views only
    assert body["stale"] is True and body["lag"] == 7
    assert body["position"]["offsets"] == {TOPIC: {str(P): 2}}
    assert body["position"]["committed"] is True and header == body["position"]["token"]


async def test_an_owner_still_opening_is_asked_briefly_then_the_copy_answers(worker):
    worker.member.answer = (503, "application/json", b'{"error": "not ready"}')
    status, body, _ = await get(worker.client, hour_path("&timeout=10"))
    assert status == 200 and body["stale"] is True and body["views"] == 3
    path = worker.member.seen[-1][0]
    assert "consistency=standby" in path
    timeout = float(path.split("timeout=")[1].split("&")[0])
    assert 0 < timeout <= 1.0  # the owner got OWNER_WAIT_S, not the request's 10 s


async def test_an_owner_that_answers_is_relayed_not_the_copy(worker):
    worker.member.answer = (200, "application/json", b'{"views": 99, "stale": false}')
    status, body, _ = await get(worker.client, hour_path())
    assert status == 200 and body == {"views": 99, "stale": False}


async def test_a_copy_behind_at_least_does_not_answer(worker):
    worker.member.answer = (503, "application/json", b'{"error": "not ready"}')
    status, body, _ = await get(worker.client, hour_path(f"&atLeast={TOPIC}:{P}:3&timeout=0.5"))
    assert status == 503 and "stale" not in body
    status, body, _ = await get(worker.client, hour_path(f"&atLeast={TOPIC}:{P}:2&timeout=0.5"))
    assert status == 200 and body["stale"] is True


async def test_a_copy_that_waits_for_at_least_answers_once_it_gets_there(worker):
    worker.member.answer = (503, "application/json", b'{"error": "not ready"}')
    asyncio.get_running_loop().call_later(0.5, worker.copy.commit)  # applies offsets 3 and 4
    status, body, _ = await get(worker.client, hour_path(f"&atLeast={TOPIC}:{P}:4&timeout=5"))
    assert status == 200 and body["views"] == 5
    assert body["position"]["offsets"] == {TOPIC: {str(P): 4}}


async def test_an_owner_short_of_at_least_in_its_second_is_asked_again_within_timeout(worker):
    worker.member.answer = (504, "application/json", b'{"error": "not reached", "position": {}}')
    started = time.monotonic()
    status, body, _ = await get(worker.client, hour_path(f"&atLeast={TOPIC}:{P}:9&timeout=2.5"))
    assert status == 504 and body["error"] == "not reached"
    assert len(worker.member.seen) >= 2  # not the first 504, given after 1 s of 2.5
    assert 2 < time.monotonic() - started < 5


async def test_a_copy_whose_lag_is_unknown_does_not_answer(worker):
    worker.app.runtime.standbys.lag.clear()
    await worker.member.server.close()
    status, body, _ = await get(worker.client, hour_path("&timeout=0.3"))
    assert status == 503 and "stale" not in body


async def test_without_standby_the_copy_is_never_read(worker):
    worker.member.answer = (503, "application/json", b'{"error": "not ready"}')
    status, body, _ = await get(
        worker.client, f"/api/properties/{PROP}/views?hour={HOUR}&timeout=0.3"
    )
    assert status == 503 and body == {"error": "not ready"}


async def test_the_owner_marks_its_own_standby_answer_fresh(worker):
    owned = worker.app.runtime.views.owned
    owned._open[P] = worker.copy.proc  # now the partition is open here: the owner answers
    try:
        status, body, _ = await get(worker.client, hour_path())
    finally:
        owned._open.clear()
    assert status == 200 and body["stale"] is False and "lag" not in body
    assert body["views"] == 3 and body["position"]["offsets"] == {TOPIC: {str(P): 2}}


def test_the_copy_position_is_the_applied_offset_stored_with_its_state(tmp_path):
    store = PartitionStore(tmp_path / "s", rocksdb_options(SMALL, SMALL))
    try:
        assert copy_position(TOPIC, 1, store.committed()).offsets == {(TOPIC, 1): -1}
        store.apply([(APPLIED_KEY, b"41")], changelog_offset=9)
        assert copy_position(TOPIC, 1, store.committed()).offsets == {(TOPIC, 1): 41}
    finally:
        store.close()


@given(OFFSETS, st.none() | st.integers(min_value=0, max_value=10**9), st.none() | OFFSETS,
       st.booleans())
def test_a_copy_is_usable_only_with_a_known_lag_at_or_past_the_bound(reached, lag, bound, other):
    position = Position({(TOPIC, 1): reached})
    bound_at = None if bound is None else Position({(TOPIC, 2 if other else 1): bound})
    expected = lag is not None and (bound is None or other or reached >= bound)
    assert usable(position, lag, bound_at) is expected


KEYS = st.text(max_size=5).filter(lambda key: key not in ("stale", "lag"))


@given(st.dictionaries(KEYS, st.integers()), st.none() | st.integers(0, 10**6))
def test_marked_adds_stale_and_lag_and_keeps_the_rest(body, lag):
    out = marked(body, lag)
    expected = {**body, "stale": False} if lag is None else {**body, "stale": True, "lag": lag}
    assert out == expected
    assert marked([1], lag) == [1]


@pytest_asyncio.fixture
async def no_copy_here(tmp_path) -> AsyncIterator[tuple[TestClient, Member]]:
    """A worker without a copy of PROP's partition, whose owner is gone, and another member
    (a stand-in) that owns nothing of the views."""
    gone, other = Member(), Member()
    await gone.server.start_server()
    owner_url = gone.url
    await gone.server.close()
    await other.server.start_server()
    settings = Settings(app_id="web-standby-peers", worker_data_dir=tmp_path / "d",
                        topic_partitions=4)
    app = create_app(settings)
    app.web.init_server()
    topic = settings.views_topic
    app.assignor.external_topics_metadata = lambda: {
        owner_url: {topic: set(range(4))}, other.url: {topic: set()}
    }
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    yield client, other
    await client.close()
    await other.server.close()


async def test_without_a_copy_here_another_member_that_keeps_one_answers(no_copy_here):
    client, other = no_copy_here
    other.answer = (200, "application/json", b'{"views": 3, "stale": true, "lag": 0}')
    status, body, _ = await get(client, hour_path())
    assert status == 200 and body == {"views": 3, "stale": True, "lag": 0}
    path, headers = other.seen[-1]
    assert "consistency=standby" in path and headers.get("X-Routed-By")


async def test_without_any_copy_the_members_are_asked_until_the_timeout(no_copy_here):
    client, other = no_copy_here
    other.answer = (503, "application/json", b'{"error": "not here"}')
    status, body, _ = await get(client, hour_path("&timeout=1"))
    asked = len(other.seen)
    assert status == 503 and asked >= 2
    status, body, _ = await get(  # committed: the other members are never asked
        client, f"/api/properties/{PROP}/views?hour={HOUR}&timeout=0.5"
    )
    assert status == 503 and len(other.seen) == asked and "stale" not in body


async def test_a_property_and_its_events_come_from_the_properties_copy(worker, tmp_path):
    """The aggregate endpoints read the properties stage's copy, at a position of
    ``property.events``; the owner is gone."""
    app = worker.app
    settings = app.runtime.settings
    store = PartitionStore(tmp_path / "props-copy", rocksdb_options(SMALL, SMALL))
    proc = PropertiesProcessor(P, store, Outbox(), PropertiesConfig.from_settings(settings))
    proc.process(0, PROP.encode(), event("c", "created", T0, PROP, title="t", city="Lyon", price=10), NOW)
    proc.before_commit(NOW)
    store.seal()
    store.apply_sealed(0)
    keeper = app.runtime.standbys
    keeper._stores[(app.runtime.properties.owned.name, P)] = store
    keeper.lag[(app.runtime.properties.owned.name, P)] = 0
    await worker.member.server.close()
    try:
        status, body, _ = await get(worker.client, f"/api/properties/{PROP}?consistency=standby")
        assert status == 200 and body["status"] == "listed" and body["version"] == 1, body
        assert body["stale"] is True and body["lag"] == 0
        assert body["position"]["offsets"] == {settings.property_events_topic: {str(P): 0}}
        status, body, _ = await get(
            worker.client, f"/api/properties/{PROP}/events?consistency=standby"
        )
        assert status == 200 and [e["version"] for e in body["events"]] == [1]
        assert body["stale"] is True
        status, body, _ = await get(worker.client, "/api/properties/nobody?consistency=standby")
        assert status == 404 and body["stale"] is True  # the copy's 404, marked as such
    finally:
        keeper._stores.pop((app.runtime.properties.owned.name, P))
        store.close()


async def test_segment_weeks_and_users_answer_standby_as_committed(worker):
    path = "/api/segments/investor/weeks/2026-11-16?consistency=standby"
    status, body, _ = await get(worker.client, path)
    assert status == 200 and body["views"] == 0 and "stale" not in body
    assert body["position"]["committed"] is True
    status, body, _ = await get(worker.client, "/api/users/nobody?consistency=standby")
    assert status == 404 and "position" in body and "stale" not in body
