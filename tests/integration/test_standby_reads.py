"""``?consistency=standby`` against real workers with ``STANDBY_REPLICAS=1``: worker A is
SIGKILLed, and while its partitions move (the session timeout, the rebalance, the restore of
the tails), every survivor answers every hour of A's partitions asked with
``consistency=standby``: 200, from a copy (``"stale": true`` with its lag; with three workers
the survivor without the copy gets it from the one with it) until the partition has an owner
again, fresh after; the counts equal the oracle's (the copies had every committed record),
positions never go back for a client that passes its last one as ``atLeast``, and nothing is
a 5xx. The same hours asked as ``committed`` meanwhile are timed, for comparison."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import orjson
import pytest
import pytest_asyncio

from app.web.routing import partition_of
from tests.support.oracle import iso
from tests.web._cluster import PARTITIONS, eventually, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SESSION_TIMEOUT_S = 10
LAG = re.compile(
    r'^property_analytics_standby_lag_records\{partition="(\d+)",stage="views"\} (\S+)$', re.M
)


@pytest_asyncio.fixture(params=[2, 3], ids=["2-workers", "3-workers"])
async def cluster(request, kafka_bootstrap, tmp_path_factory):
    group = start_cluster(
        kafka_bootstrap, tmp_path_factory.mktemp("standby-reads"), request.param,
        STANDBY_REPLICAS="1", SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT_S),
        HEARTBEAT_INTERVAL_SECONDS="1",
    )
    try:
        await group.settled(timeout=120)
        yield group
    finally:
        group.stop()


async def copies_caught_up(workers, partitions: set[int]) -> None:  # noqa: ANN001
    """Each of ``partitions`` has a copy on one of ``workers`` that has applied all but the
    commit markers of its changelog."""
    lag: dict[int, float] = {}
    for worker in workers:
        status, body = await worker.get("/metrics")
        assert status == 200
        lag.update({int(p): float(v) for p, v in LAG.findall(body)})
    assert partitions <= set(lag), f"copies of {sorted(lag)}, not of {sorted(partitions)}"
    assert all(lag[p] <= 1 for p in partitions), lag


def timings(answers: list[tuple[int, int]]) -> dict:
    """Answers by status, and the median and slowest time of the 200s in ms."""
    ok = sorted(ms for status, ms in answers if status == 200)
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    return {"statuses": statuses, "median_ms": ok[len(ok) // 2] if ok else None,
            "max_ms": max((ms for _, ms in answers), default=None)}


async def test_standby_reads_answer_a_killed_owners_partitions_during_the_move(cluster):
    exp = await cluster.feed(views=3000)
    a, *survivors = cluster.workers
    a_owned = (await cluster.owned())[0]
    await eventually(lambda: copies_caught_up(survivors, a_owned), timeout=60)
    # One counted hour of a property on each of A's partitions.
    hours: dict[int, tuple[str, int]] = {}
    for prop, hour in sorted(exp.hourly, key=lambda ph: (-exp.hourly[ph][0], ph)):
        hours.setdefault(partition_of(prop, PARTITIONS), (prop, hour))
    keys = [(w, p) for w in range(len(survivors)) for p in sorted(a_owned)]
    topic = cluster.env["VIEWS_TOPIC"]
    answers: dict[tuple[int, int], list[tuple[bool, int, int, dict]]] = {k: [] for k in keys}
    tokens: dict[tuple[int, int], str | None] = dict.fromkeys(keys)
    problems: list[str] = []

    def url_of(key: tuple[int, int], query: str) -> str:
        prop, hour = hours[key[1]]
        return f"{survivors[key[0]].url}/api/properties/{prop}/views?hour={iso(hour)}&{query}"

    async def ask(session: aiohttp.ClientSession, key: tuple[int, int]) -> None:
        url = url_of(key, "consistency=standby&timeout=5")
        if tokens[key]:
            url += f"&atLeast={tokens[key]}"
        started = time.monotonic()
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            body = orjson.loads(await response.read())
            took = time.monotonic() - started
            if response.status != 200:
                problems.append(f"{key}: {response.status} {body} after {took:.1f} s")
                return
            tokens[key] = response.headers["X-Position"]
            offset = body["position"]["offsets"][topic][str(key[1])]
            answers[key].append((body["stale"], offset, round(took * 1000), body))

    # For comparison, the same hours asked as committed meanwhile (statuses and times only).
    committed: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def ask_committed(session: aiohttp.ClientSession, key: tuple[int, int]) -> None:
        while not done.is_set():
            started = time.monotonic()
            async with session.get(url_of(key, "timeout=5"),
                                   timeout=aiohttp.ClientTimeout(total=30)) as response:
                await response.read()
                committed.append((response.status, round((time.monotonic() - started) * 1000)))
            await asyncio.sleep(0.2)

    a.kill()
    killed = time.monotonic()
    async with aiohttp.ClientSession() as session:
        comparing = [asyncio.ensure_future(ask_committed(session, k)) for k in keys]
        # Until every survivor has answered fresh 5 times in a row for each (60 s at most).
        while time.monotonic() - killed < 60:
            await asyncio.gather(*(ask(session, k) for k in keys))
            if all(len(got) >= 5 and not any(s for s, *_ in got[-5:]) for got in answers.values()):
                break
            await asyncio.sleep(0.2)
        done.set()
        await asyncio.gather(*comparing)
    summary = {
        k: (len(got), sum(1 for s, *_ in got if s), max((ms for *_, ms, _ in got), default=None))
        for k, got in answers.items()
    }
    print(f"standby, per (survivor, partition) (answers, stale, slowest ms): {summary}")
    print(f"standby, all: {timings([(200, ms) for got in answers.values() for *_, ms, _ in got])}")
    print(f"committed, all: {timings(committed)}")
    assert not problems, problems[:10]
    for key, got in answers.items():
        prop, hour = hours[key[1]]
        expected = exp.hour_answer(prop, hour)
        assert any(stale for stale, *_ in got), f"{key}: no answer came from a copy: {summary}"
        assert not got[-1][0], f"{key}: never answered fresh: {got[-3:]}"
        offsets = [offset for _, offset, _, _ in got]
        assert offsets == sorted(offsets), (key, offsets)
        for stale, _, _, body in got:
            if stale:
                assert isinstance(body["lag"], int) and body["lag"] >= 0, body
            else:
                assert "lag" not in body, body
            counts = {k: body[k] for k in expected}
            assert counts == expected, (key, stale, counts, expected)
