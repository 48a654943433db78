"""``?consistency=standby`` against two real workers with ``STANDBY_REPLICAS=1``: worker A is
SIGKILLed, and while its partitions move to B (the session timeout, the rebalance, B's restore
of the tails), B answers every hour of A's partitions asked with ``consistency=standby``: 200,
from its copy (``"stale": true`` with its lag) until it owns the partition, fresh after; the
counts equal the oracle's (the copies had every committed record), positions never go back for
a client that passes its last one as ``atLeast``, and nothing is a 5xx."""

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


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_bootstrap, tmp_path_factory):
    group = start_cluster(
        kafka_bootstrap, tmp_path_factory.mktemp("standby-reads"), 2, STANDBY_REPLICAS="1",
        SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT_S), HEARTBEAT_INTERVAL_SECONDS="1",
    )
    try:
        await group.settled(timeout=120)
        yield group
    finally:
        group.stop()


async def copies_caught_up(worker, partitions: set[int]) -> None:  # noqa: ANN001
    """``worker`` keeps a copy of every one of ``partitions`` and each has applied all but
    the commit markers of its changelog."""
    status, body = await worker.get("/metrics")
    assert status == 200
    lag = {int(p): float(v) for p, v in LAG.findall(body)}
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
    a, b = cluster.workers
    a_owned, _ = await cluster.owned()
    await eventually(lambda: copies_caught_up(b, a_owned), timeout=60)
    # One counted hour of a property on each of A's partitions.
    asked: dict[int, tuple[str, int]] = {}
    for prop, hour in sorted(exp.hourly, key=lambda ph: (-exp.hourly[ph][0], ph)):
        asked.setdefault(partition_of(prop, PARTITIONS), (prop, hour))
    asked = {p: asked[p] for p in sorted(a_owned)}
    assert len(asked) == len(a_owned), (asked, a_owned)
    topic = cluster.env["VIEWS_TOPIC"]
    answers: dict[int, list[tuple[bool, int, int, dict]]] = {p: [] for p in asked}
    tokens: dict[int, str | None] = dict.fromkeys(asked)
    problems: list[str] = []

    async def ask(session: aiohttp.ClientSession, partition: int) -> None:
        prop, hour = asked[partition]
        url = (f"{b.url}/api/properties/{prop}/views?hour={iso(hour)}"
               f"&consistency=standby&timeout=5")
        if tokens[partition]:
            url += f"&atLeast={tokens[partition]}"
        started = time.monotonic()
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
            body = orjson.loads(await response.read())
            took = time.monotonic() - started
            if response.status != 200:
                problems.append(f"{partition}: {response.status} {body} after {took:.1f} s")
                return
            tokens[partition] = response.headers["X-Position"]
            offset = body["position"]["offsets"][topic][str(partition)]
            answers[partition].append((body["stale"], offset, round(took * 1000), body))

    # For comparison, the same hours asked as committed meanwhile (statuses and times only).
    committed: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def ask_committed(session: aiohttp.ClientSession, partition: int) -> None:
        prop, hour = asked[partition]
        url = f"{b.url}/api/properties/{prop}/views?hour={iso(hour)}&timeout=5"
        while not done.is_set():
            started = time.monotonic()
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
                await response.read()
                committed.append((response.status, round((time.monotonic() - started) * 1000)))
            await asyncio.sleep(0.2)

    a.kill()
    killed = time.monotonic()
    async with aiohttp.ClientSession() as session:
        comparing = [asyncio.ensure_future(ask_committed(session, p)) for p in asked]
        # Until B has owned every one of A's partitions for a while (or 60 s at most).
        while time.monotonic() - killed < 60:
            await asyncio.gather(*(ask(session, p) for p in asked))
            fresh_for = [
                sum(1 for stale, *_ in reversed(got[-5:]) if not stale) for got in answers.values()
            ]
            if all(n >= 5 for n in fresh_for):
                break
            await asyncio.sleep(0.2)
        done.set()
        await asyncio.gather(*comparing)
    stale_total = sum(1 for got in answers.values() for stale, *_ in got if stale)
    summary = {
        p: (len(got), sum(1 for s, *_ in got if s), max((ms for *_, ms, _ in got), default=None))
        for p, got in answers.items()
    }
    print(f"standby, per partition (answers, stale, slowest ms): {summary}")
    print(f"standby, all: {timings([(200, ms) for got in answers.values() for *_, ms, _ in got])}")
    print(f"committed, all: {timings(committed)}")
    assert not problems, problems[:10]
    assert stale_total > 0, f"no answer came from a copy: {summary}"
    for partition, got in answers.items():
        prop, hour = asked[partition]
        expected = exp.hour_answer(prop, hour)
        assert got and not got[-1][0], f"{partition}: B never answered as its owner: {got[-3:]}"
        offsets = [offset for _, offset, _, _ in got]
        assert offsets == sorted(offsets), (partition, offsets)
        for stale, _, _, body in got:
            if stale:
                assert isinstance(body["lag"], int) and body["lag"] >= 0, body
            else:
                assert "lag" not in body, body
            counts = {k: body[k] for k in expected}
            assert counts == expected, (partition, stale, counts, expected)
