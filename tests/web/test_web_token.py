"""A worker joining a fed group answers /ready 503 until its state is recovered; with
API_TOKEN set, /api/* needs the bearer token, on every worker and through forwarding."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from app.web.routing import ROUTED_HEADER
from app.windows import HOUR_MS, hour_start, iso_ms
from tests.support.workers import Worker
from tests.web._cluster import PARTITIONS, property_in, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

TOKEN = "s3cret-token-for-tests"


async def poll_until_ready(worker: Worker, timeout: float = 120) -> list[tuple[float, str, int, object]]:
    """(seconds since start, path, status, body) of /ready and /health, polled from the
    moment the process starts until /ready answers 200."""
    seen: list[tuple[float, str, int, object]] = []
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        while time.monotonic() - started < timeout:
            assert worker.alive, f"worker died; see {worker.log_path}"
            for path in ("/ready", "/health"):
                try:
                    async with session.get(worker.url + path, timeout=aiohttp.ClientTimeout(total=5)) as r:
                        body = await r.json(content_type=None)
                        seen.append((time.monotonic() - started, path, r.status, body))
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                    continue  # not listening yet
            if any(p == "/ready" and s == 200 for _, p, s, _ in seen):
                return seen
            await asyncio.sleep(0.05)
    raise AssertionError(f"{worker.url}/ready never answered 200: {seen[-3:]}")


async def test_ready_is_503_during_recovery_and_the_token_guards_every_api_route(
    kafka_bootstrap, tmp_path, capsys
):
    group = start_cluster(kafka_bootstrap, tmp_path, 1, API_TOKEN=TOKEN)
    a = group.workers[0]
    try:
        await a.wait_ready(120)
        exp = await group.feed()

        # A second worker joins the fed group: it takes partitions over and restores them.
        b = Worker(group.env, data_dir=tmp_path / "worker-1").start()
        group.workers.append(b)
        seen = await poll_until_ready(b)
        ready = [(t, s, body) for t, p, s, body in seen if p == "/ready"]
        not_ready = [(t, body) for t, s, body in ready if s == 503]
        assert not_ready, f"/ready said 200 at its first answer: {ready[:3]}"
        assert all(body["ready"] is False for _, body in not_ready)
        assert ready[0][1] == 503, "the first answer is 503"
        first_200 = next(t for t, s, _ in ready if s == 200)
        assert any(p == "/health" and s == 200 and t < first_200 for t, p, s, _ in seen), (
            "alive (/health 200) while still recovering"
        )
        with capsys.disabled():
            print(f"\n[test_web_token] joining worker: /ready 503 for {first_200 - not_ready[0][0]:.1f}s "
                  f"({len(not_ready)} answers) before its first 200")

        owned_a, owned_b = await group.settled()
        prop_a, prop_b = property_in(owned_a), property_in(owned_b)
        hour = hour_start(group.now_ms)
        good = {"Authorization": f"Bearer {TOKEN}"}
        wrong = {"Authorization": "Bearer not-the-token"}
        api_paths = [
            f"/api/properties/{prop_a}/views?hour={iso_ms(hour)}",
            f"/api/properties/{prop_b}/views?hour={iso_ms(hour)}",
            f"/api/properties/{prop_b}/views/history?from={iso_ms(hour - HOUR_MS)}&to={iso_ms(hour + HOUR_MS)}",
            "/api/segments/investor/weeks/2026-11-23",
            "/api/users/user-1",
            "/api/insights",
            "/api/dashboard",
            "/api/dashboard/local",
        ]
        for worker in (a, b):
            for path in api_paths:
                for headers in ({}, wrong):
                    status, body = await worker.get(path, headers=headers)
                    assert status == 401 and set(body) == {"error"}, (worker.port, path, headers, status)
                # A bad parameter without the token is still 401: the token is checked first.
            status, _ = await worker.get("/api/insights?limit=0")
            assert status == 401
            for path in ("/health", "/ready", "/metrics", "/"):
                status, _ = await worker.get(path)
                assert status == 200, path

            # With the token: the owner's answer, whichever worker is asked (B forwards prop_a
            # to A, A forwards prop_b to B, each time with the caller's token).
            for prop in (prop_a, prop_b):
                status, body = await worker.get(f"/api/properties/{prop}/views?hour={iso_ms(hour)}", headers=good)
                assert (status, body) == (200, exp.hour_answer(prop, hour)), (worker.port, prop)
            status, body = await worker.get(api_paths[2], headers=good)
            assert status == 200 and body["windows"] == [
                exp.hour_answer(prop_b, hour - HOUR_MS), exp.hour_answer(prop_b, hour)
            ]
            status, body = await worker.get("/api/dashboard", headers=good)
            assert status == 200 and body["partitions"]["missing"] == [], body["partitions"]
            assert {w["url"].rstrip("/") for w in body["workers"]} == {a.url, b.url}
            status, body = await worker.get("/api/insights?limit=0", headers=good)
            assert status == 400

        # A request already forwarded once is never forwarded again (no loops between workers).
        status, body = await b.get(
            f"/api/properties/{prop_a}/views?hour={iso_ms(hour)}", headers={**good, ROUTED_HEADER: a.url}
        )
        assert status == 503 and "error" in body
        assert set().union(owned_a, owned_b) == set(range(PARTITIONS))
    finally:
        group.stop()
