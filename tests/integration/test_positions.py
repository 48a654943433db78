"""Positions against two real workers: read-your-writes with ``atLeast``, ``latest`` against
the counts of what was produced, bad tokens, and monotonic reads for a client that passes its
last token back, across a rebalance and a SIGKILL of the owner."""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import quote
from collections import Counter, defaultdict

import aiohttp
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from app.client import AnswerError, hour_at_least, produce_view, view_and_count
from app.positions import Position, PositionCodec
from app.web.routing import partition_of
from app.windows import HOUR_MS, hour_start, iso_ms, week_start
from tests.support.workers import Worker
from tests.web._cluster import PARTITIONS, start_cluster

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def view(prop: str, user: str, ts_ms: int) -> dict:
    return {
        "eventId": uuid.uuid4().hex, "eventType": "property.viewed", "version": "1.0",
        "timestamp": iso_ms(ts_ms), "propertyId": prop, "userId": user,
    }


def properties_per_partition(tag: str) -> dict[int, str]:
    """One fresh property on each views partition."""
    out: dict[int, str] = {}
    i = 0
    while len(out) < PARTITIONS:
        prop = f"{tag}-{i}"
        out.setdefault(partition_of(prop, PARTITIONS), prop)
        i += 1
    return out


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_bootstrap, tmp_path_factory):
    group = start_cluster(
        kafka_bootstrap, tmp_path_factory.mktemp("positions"), 2, SESSION_TIMEOUT_SECONDS="6",
        HEARTBEAT_INTERVAL_SECONDS="1",
    )
    try:
        await group.settled(timeout=120)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        group.producer = producer
        try:
            yield group
        finally:
            await producer.stop()
    finally:
        group.stop()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, dict, str | None]:
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=40)) as response:
        assert response.content_type == "application/json", (url, await response.text())
        return response.status, orjson.loads(await response.read()), response.headers.get("X-Position")


async def test_at_least_of_a_just_produced_view_always_includes_it(cluster):
    env = cluster.env
    topic = env["VIEWS_TOPIC"]
    now = int(time.time() * 1000)
    hour = iso_ms(hour_start(now))
    props = properties_per_partition("ryw")
    async with aiohttp.ClientSession() as session:
        for round_ in range(1, 4):
            for partition, prop in sorted(props.items()):
                for worker, consistency in ((cluster.workers[0], "committed"),
                                            (cluster.workers[1], "latest")):
                    written, answer = await view_and_count(
                        cluster.producer, session, worker.url,
                        view(prop, f"user-{round_}-{consistency}", now), topic=topic,
                        consistency=consistency, timeout_s=10,
                    )
                    assert written.partition == partition
                    views = 2 * (round_ - 1) + (1 if consistency == "committed" else 2)
                    assert answer["views"] == views, (prop, consistency, answer)
                    reached = answer["position"]["offsets"][topic][str(partition)]
                    assert reached >= written.offset
                    assert answer["position"]["committed"] is (consistency == "committed")
                    # the token says the same as the body
                    status, again, header = await get(
                        session,
                        f"{worker.url}/api/properties/{prop}/views?hour={hour}"
                        f"&atLeast={answer['position']['token']}&consistency={consistency}",
                    )
                    assert status == 200 and again["views"] >= views
                    assert header == again["position"]["token"]


async def test_latest_equals_the_counts_once_committed(cluster):
    env = cluster.env
    topic = env["VIEWS_TOPIC"]
    now = int(time.time() * 1000)
    hour = iso_ms(hour_start(now))
    props = properties_per_partition("latest")
    expected_views: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    last: dict[int, int] = {}
    for i in range(120):
        partition, prop = sorted(props.items())[i % PARTITIONS]
        user = f"u-{i % 7}"
        written = await produce_view(cluster.producer, view(prop, user, now), topic)
        expected_views[prop] += 1
        users[prop].add(user)
        last[partition] = written.offset
    bound = ",".join(f"{topic}:{p}:{o}" for p, o in sorted(last.items()))
    async with aiohttp.ClientSession() as session:
        for worker in cluster.workers:
            for partition, prop in sorted(props.items()):
                path = f"{worker.url}/api/properties/{prop}/views?hour={hour}&atLeast={bound}"
                status, committed, _ = await get(session, path + "&timeout=20")
                assert status == 200, committed
                # committed up to the bound: latest now answers the same counts
                status, latest, _ = await get(session, path + "&consistency=latest")
                assert status == 200, latest
                for answer in (committed, latest):
                    assert (answer["views"], answer["uniqueUsers"]) == (
                        expected_views[prop], len(users[prop])
                    ), (prop, answer)
                assert latest["position"]["committed"] is False
                assert committed["position"]["committed"] is True
                got = latest["position"]["offsets"][topic][str(partition)]
                assert got >= committed["position"]["offsets"][topic][str(partition)] >= last[partition]


async def test_every_answer_kind_carries_its_position_and_waits_for_it(cluster):
    env = cluster.env
    now = int(time.time() * 1000)
    week = iso_ms(week_start(now))[:10]
    profiles = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap)
    await profiles.start()
    try:
        meta = await profiles.send_and_wait(
            env["PROFILES_TOPIC"], key=b"pos-user",
            value=orjson.dumps({"userId": "pos-user", "segment": "investor"}),
        )
    finally:
        await profiles.stop()
    async with aiohttp.ClientSession() as session:
        for worker in cluster.workers:
            bound = f"{env['PROFILES_TOPIC']}:{meta.partition}:{meta.offset}"
            status, body, header = await get(session, f"{worker.url}/api/users/pos-user?atLeast={bound}")
            assert status == 200 and body["segment"] == "investor", body
            assert body["position"]["offsets"][env["PROFILES_TOPIC"]]["0"] >= meta.offset
            assert header == body["position"]["token"]
        # every worker holds the profile: the view is joined with it
        written = await produce_view(
            cluster.producer, view("pos-prop", "pos-user", now), env["VIEWS_TOPIC"]
        )
        for worker in cluster.workers:
            status, body, _ = await get(
                session, f"{worker.url}/api/segments/investor/weeks/{week}?atLeast={written.bound}&timeout=20"
            )
            assert status == 200 and body["views"] >= 1, body
            assert body["position"]["offsets"][env["VIEWS_TOPIC"]][str(written.partition)] >= written.offset
            status, body, _ = await get(
                session, f"{worker.url}/api/properties/pos-prop/views/history"
                f"?from={iso_ms(now - 7_200_000)}&to={iso_ms(now + 1000)}&atLeast={written.bound}",
            )
            assert status == 200 and sum(w["views"] for w in body["windows"]) == 1, body
            status, body, _ = await get(session, f"{worker.url}/api/properties/pos-prop")
            assert status == 404 and env["PROPERTY_EVENTS_TOPIC"] in body["position"]["offsets"]
        # a bound never reached: 504 with the position reached, after the timeout
        far = f"{env['VIEWS_TOPIC']}:{written.partition}:{written.offset + 10**9}"
        started = time.monotonic()
        status, body, _ = await get(
            session, f"{cluster.workers[0].url}/api/properties/pos-prop/views?hour={iso_ms(now)}"
            f"&atLeast={far}&timeout=0.5",
        )
        assert status == 504 and "not reached" in body["error"], body
        assert body["position"]["offsets"][env["VIEWS_TOPIC"]][str(written.partition)] >= written.offset
        assert time.monotonic() - started < 5


async def test_bad_tokens_are_400(cluster):
    env = cluster.env
    topics = {env["VIEWS_TOPIC"]: PARTITIONS, env["PROPERTY_EVENTS_TOPIC"]: PARTITIONS,
              env["PROFILES_TOPIC"]: 1}
    other_app = PositionCodec("another-app", topics).token(Position({(env["VIEWS_TOPIC"], 0): 1}))
    other_topic = PositionCodec(env["APP_ID"], {"views-of-someone-else": 6}).token(
        Position({("views-of-someone-else", 0): 1})
    )
    now = iso_ms(int(time.time() * 1000))
    bounds = {
        other_app: "another app",
        other_topic: "topic this app does not read",
        "views-of-someone-else:0:1": "not a topic this app reads",
        "AAAA%%": "not a position token",
        "bm90IGEgdG9rZW4": "not a position token",
        f"{env['VIEWS_TOPIC']}:99:1": "partitions",
    }
    paths = [f"/api/properties/p-1/views?hour={now}", "/api/users/u-1",
             "/api/segments/investor/weeks/2026-11-23", "/api/properties/p-1",
             f"/api/properties/p-1/views/history?from={now}&to={iso_ms(int(time.time() * 1000) + HOUR_MS)}"]
    async with aiohttp.ClientSession() as session:
        for worker in cluster.workers:
            for path in paths:
                sep = "&" if "?" in path else "?"
                for bound, fragment in bounds.items():
                    status, body, _ = await get(
                        session, f"{worker.url}{path}{sep}atLeast={quote(bound, safe='')}"
                    )
                    assert status == 400 and fragment in body["error"], (path, bound, body)
                    assert set(body) == {"error"}
                status, body, _ = await get(session, f"{worker.url}{path}{sep}consistency=eventually")
                assert status == 400 and "consistency" in body["error"], body


async def _monotonic_client(
    session: aiohttp.ClientSession, urls: list[str], prop: str, hour: str, partition: int,
    topic: str, consistency: str, stop: asyncio.Event, seen: list,
) -> None:
    """Ask again and again, passing the last token back; record every 200 answer."""
    token = None
    while not stop.is_set():
        for url in urls:
            query = f"hour={hour}&consistency={consistency}&timeout=15"
            if token:
                query += f"&atLeast={token}"
            try:
                status, body, header = await get(session, f"{url}/api/properties/{prop}/views?{query}")
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                continue  # a worker being killed
            if status == 200:
                seen.append((body["position"]["offsets"][topic][str(partition)], body["views"]))
                token = header
            else:
                assert status in (503, 504), body
            await asyncio.sleep(0.05)


async def test_monotonic_reads_across_a_rebalance_and_a_sigkill_of_the_owner(cluster):
    env = cluster.env
    topic = env["VIEWS_TOPIC"]
    now = int(time.time() * 1000)
    hour = iso_ms(hour_start(now))
    props = properties_per_partition("mono")
    stop = asyncio.Event()
    a, b = cluster.workers
    c = Worker(cluster.env, data_dir=b.data_dir.parent / "worker-2")
    cluster.workers.append(c)

    async def produce_forever() -> None:
        i = 0
        while not stop.is_set():
            for prop in props.values():
                await produce_view(cluster.producer, view(prop, f"m-{i % 11}", now), topic)
            i += 1
            await asyncio.sleep(0.1)

    seen: dict[tuple[int, str], list] = {(p, k): [] for p in props for k in ("committed", "latest")}
    async with aiohttp.ClientSession() as session:
        producing = asyncio.ensure_future(produce_forever())
        clients = [
            asyncio.ensure_future(_monotonic_client(
                session, [a.url], prop, hour, partition, topic, consistency, stop,
                seen[(partition, consistency)],
            ))
            for partition, prop in props.items() for consistency in ("committed", "latest")
        ]
        try:
            await asyncio.sleep(5)
            c.start()  # a rebalance: partitions move to the new worker
            await c.wait_ready(timeout=120)
            await asyncio.sleep(8)
            _, ready = await b.get("/ready")
            b_owned = set(ready["partitions"]["views"])
            assert b_owned, "the worker to kill owns no views partition"
            at_kill = {key: len(answers) for key, answers in seen.items()}
            b.kill()  # the owner of some partitions dies without committing or leaving
            await asyncio.sleep(25)  # session timeout, rebalance, restore, catch-up
        finally:
            stop.set()
            await asyncio.gather(producing, *clients)
    for key, answers in seen.items():
        assert len(answers) > 20, (key, len(answers))
        offsets = [offset for offset, _ in answers]
        views = [count for _, count in answers]
        assert offsets == sorted(offsets), (key, offsets)
        assert views == sorted(views), (key, views)
    # every partition kept answering, with more views, after the kill, the killed owner's too
    for (partition, kind), answers in seen.items():
        before = answers[at_kill[(partition, kind)] - 1][1]
        assert answers[-1][1] > before, (partition, kind, partition in b_owned, answers[-5:])
