"""Hostile HTTP on two real workers with API_TOKEN set (and no PEER_SECRET, so the peer key
is derived from the token): ids of any shape the contract allows are answered by both
workers, the one that does not own the key forwarding it with a peer signature; bad times,
bad ids and bad headers are 4xx JSON; faust's /router pages are gone."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import orjson
import pytest
import pytest_asyncio
from yarl import URL

from app.generator import Workload, produce
from app.settings import Settings
from app.web.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, audience_of, peer_headers
from app.web.routing import partition_of
from app.windows import HOUR_MS, hour_start, iso_ms
from tests.support.workers import wait_caught_up, without_position
from tests.web._cluster import PARTITIONS, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "hostile-token-for-tests"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
# Valid ids (CONTRACT §3) that mean something else in a URL, one or more in every partition.
IDS = ["a/b", "a:b", "a b", "50%", "%25", "..", ".", "a+b", "?#&=", "日本の物件", "Ωmega", "trail ", "<tag>"]


def encoded(ident: str) -> str:
    """Every byte percent-encoded: what a careful client sends."""
    return "".join(f"%{b:02X}" for b in ident.encode())


async def get(worker, path: str) -> tuple[int, object]:
    """GET ``path`` with the token, sent exactly as written (``%2E%2E`` stays ``%2E%2E``)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(URL(worker.url + path, encoded=True), headers=GOOD) as response:
            assert response.content_type == "application/json", (path, await response.text())
            return response.status, without_position(orjson.loads(await response.read()))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fed(kafka_bootstrap, tmp_path_factory):
    """Two workers; property ``IDS[i]`` has ``i + 1`` views from distinct users this hour."""
    assert {partition_of(i, PARTITIONS) for i in IDS} == set(range(PARTITIONS))
    group = start_cluster(kafka_bootstrap, tmp_path_factory.mktemp("hostile"), 2, API_TOKEN=TOKEN)
    try:
        for worker in group.workers:
            await worker.wait_ready(120)
        await group.settled()
        now = int(time.time() * 1000)
        records = [Workload.view(f"e-{i}-{n}", now - 1000, ident, f"user-{n}")
                   for i, ident in enumerate(IDS) for n in range(i + 1)]
        await produce(group.env["VIEWS_TOPIC"], records, {"bootstrap_servers": kafka_bootstrap})
        await wait_caught_up(kafka_bootstrap, group.env, timeout=60)
        group.now_ms = now
        yield group
    finally:
        group.stop()


async def test_ids_of_any_shape_are_answered_by_both_workers(fed):
    owned = await fed.owned()
    hour = hour_start(fed.now_ms)
    forwarded = 0
    for worker, mine in zip(fed.workers, owned, strict=True):
        for i, ident in enumerate(IDS):
            forwarded += partition_of(ident, PARTITIONS) not in mine
            status, body = await get(worker, f"/api/properties/{encoded(ident)}/views?hour={iso_ms(hour)}")
            assert status == 200, (worker.port, ident, body)
            assert body == {
                "propertyId": ident, "windowStart": iso_ms(hour), "windowEnd": iso_ms(hour + HOUR_MS),
                "views": i + 1, "uniqueUsers": i + 1,
            }, (worker.port, ident)
            status, body = await get(
                worker,
                f"/api/properties/{encoded(ident)}/views/history"
                f"?from={iso_ms(hour - HOUR_MS)}&to={iso_ms(hour + HOUR_MS)}",
            )
            assert status == 200 and [w["views"] for w in body["windows"]] == [0, i + 1], (ident, body)
    assert forwarded == len(IDS), "each id was asked once of the worker that does not own it"


async def raw_get(worker, request: bytes) -> tuple[int, bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
    writer.write(request)
    head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    writer.close()
    return int(head.split(b" ")[1]), head, body


async def test_hostile_requests_get_4xx_json_from_a_real_worker(fed):
    worker = fed.workers[0]
    for path, status in [
        ("/api/properties/p/views?hour=9999-12-31T23:00:00Z", 400),
        ("/api/properties/p/views?hour=0001-01-01T00:00:00%2B01:00", 400),
        ("/api/segments/investor/weeks/9999-12-27", 400),
        ("/api/dashboard?hour=9999-12-31T23:00:00Z", 400),
        ("/api/properties/%00%ff/views?hour=2026-11-20T14:00:00Z", 400),
        (f"/api/properties/{'x' * 257}/views?hour=2026-11-20T14:00:00Z", 400),
        ("/api/users/a%01b", 400),
        ("/router/", 404),
        ("/router/topics", 404),
    ]:
        got, body = await get(worker, path)
        assert got == status and set(body) == {"error"}, (path, got, body)
    for path in ("/router/", "/router/topics"):
        got, body = await worker.get(path)
        assert got == 401 and set(body) == {"error"}, (path, got, body)

    got, head, body = await raw_get(
        worker,
        b"GET /api/insights HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert got == 401 and b"application/json" in head and set(orjson.loads(body)) == {"error"}


async def test_a_worker_takes_a_fresh_peer_signature_and_refuses_forged_or_old_ones(fed):
    worker = fed.workers[1]
    key = Settings(api_token=TOKEN, app_id=fed.env["APP_ID"]).peer_key
    me = audience_of(worker.url)
    path = "/api/insights?limit=3"
    now = int(time.time() * 1000)
    got, body = await worker.get(path, headers=peer_headers(key, "GET", me, path, now))
    assert got == 200 and "insights" in body
    for headers in (
        {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: "f" * 64},
        peer_headers(key, "GET", me, path, now - 120_000),
        peer_headers(key, "GET", audience_of(fed.workers[0].url), path, now),
    ):
        async with aiohttp.ClientSession() as session:
            async with session.get(worker.url + path, headers=headers) as response:
                assert response.status == 401 and response.content_type == "application/json"
