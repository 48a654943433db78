"""Workers fed with the seeded workload (app.generator.Workload), and what their HTTP API must
answer for it, recomputed here from the records produced.

The workload is a 24 h backfill ending now, in event-time order (no late views), with
duplicates and malformed records, so expected answers are simple to recompute: dedupe by
eventId, skip what is not JSON, count per (property, hour) and per (segment, ISO week).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from app.generator import Record, Workload, produce
from app.web.routing import partition_of
from app.windows import HOUR_MS, hour_start, iso_ms, parse_iso, week_start
from tests.support.workers import Worker, isolated_env, wait_caught_up

PARTITIONS = 6
SEED = 20261126
VIEWS = 6000


@dataclass
class Expected:
    """Answers the API must give for the records produced."""

    hourly: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)
    weekly: dict[tuple[str, int], dict] = field(default_factory=dict)
    profiles: dict[str, dict] = field(default_factory=dict)
    accepted: int = 0
    duplicates: int = 0
    malformed: int = 0
    records: int = 0

    def hour_answer(self, prop: str, hour: int) -> dict:
        views, users = self.hourly.get((prop, hour), (0, 0))
        return {
            "propertyId": prop,
            "windowStart": iso_ms(hour),
            "windowEnd": iso_ms(hour + HOUR_MS),
            "views": views,
            "uniqueUsers": users,
        }

    def top_of_hour(self, hour: int, limit: int) -> list[dict]:
        rows = [(v, p, u) for (p, h), (v, u) in self.hourly.items() if h == hour]
        rows.sort(key=lambda r: (-r[0], r[1]))
        return [{"propertyId": p, "views": v, "uniqueUsers": u} for v, p, u in rows[:limit]]

    def hour_total(self, hour: int) -> int:
        return sum(v for (_, h), (v, _) in self.hourly.items() if h == hour)


def expected_from(profiles: list[Record], views: list[Record]) -> Expected:
    exp = Expected()
    for record in profiles:
        doc = orjson.loads(record.value)
        exp.profiles[doc["userId"]] = doc
    segment_of = {user: doc["segment"] for user, doc in exp.profiles.items()}
    seen: set[str] = set()
    hour_views: Counter = Counter()
    hour_users: dict[tuple[str, int], set] = defaultdict(set)
    week_views: Counter = Counter()
    week_users: dict[tuple[str, int], set] = defaultdict(set)
    week_props: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for record in views:
        exp.records += 1
        try:
            doc = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            exp.malformed += 1
            continue
        if doc["eventId"] in seen:
            exp.duplicates += 1
            continue
        seen.add(doc["eventId"])
        exp.accepted += 1
        ts = parse_iso(doc["timestamp"])
        prop, user = doc["propertyId"], doc["userId"]
        segment = segment_of.get(user, "unknown")
        hour, week = hour_start(ts), week_start(ts)
        hour_views[(prop, hour)] += 1
        hour_users[(prop, hour)].add(user)
        week_views[(segment, week)] += 1
        week_users[(segment, week)].add(user)
        week_props[(segment, week)][prop] += 1
    exp.hourly = {key: (n, len(hour_users[key])) for key, n in hour_views.items()}
    for (segment, week), n in week_views.items():
        top = sorted(week_props[(segment, week)].items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        exp.weekly[(segment, week)] = {
            "segment": segment,
            "windowStart": iso_ms(week),
            "windowEnd": iso_ms(week + 7 * 24 * HOUR_MS),
            "views": n,
            "uniqueUsers": len(week_users[(segment, week)]),
            "topProperties": [{"propertyId": p, "views": v} for p, v in top],
        }
    return exp


@dataclass
class Cluster:
    bootstrap: str
    env: dict[str, str]
    workers: list[Worker]
    expected: Expected | None = None
    now_ms: int = 0

    async def feed(self, views: int = VIEWS) -> Expected:
        """Produce the seeded workload (profiles first) and wait until it is all processed."""
        workload = Workload(
            seed=SEED,
            users=400,
            properties=80,
            views_topic=self.env["VIEWS_TOPIC"],
            profiles_topic=self.env["PROFILES_TOPIC"],
            duplicate_rate=0.01,
            bad_rate=0.005,
            spike_every=1500,
        )
        kwargs = {"bootstrap_servers": self.bootstrap}
        profiles = list(workload.profiles())
        await produce(profiles, kwargs)
        # A view takes the segment its user has when it is processed (CONTRACT §4): have every
        # profile on every worker first, so that the expected segments are the profiles'.
        users = [orjson.loads(r.value)["userId"] for r in profiles]
        await eventually(lambda: self._has_profiles(users), timeout=60)
        self.now_ms = int(time.time() * 1000)
        day = 24 * HOUR_MS
        # Event times over the last 24 h, the newest a few seconds old.
        records = list(workload.views(views, self.now_ms - day, day / views))
        await produce(records, kwargs)
        await wait_caught_up(self.bootstrap, self.env, timeout=150)
        self.expected = expected_from(profiles, records)
        return self.expected

    async def _has_profiles(self, users: list[str]) -> None:
        async with aiohttp.ClientSession() as session:
            for worker in self.workers:
                for user in users:
                    async with session.get(f"{worker.url}/api/users/{user}", headers=self.headers) as r:
                        assert r.status == 200, f"{user} not yet on worker {worker.port}"

    @property
    def headers(self) -> dict[str, str]:
        token = self.env.get("API_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def owned(self) -> list[set[int]]:
        """The views partitions each worker has open, from its /ready."""
        out = []
        for worker in self.workers:
            _, body = await worker.get("/ready")
            out.append(set(body["partitions"]["views"]))
        return out

    async def settled(self, timeout: float = 90) -> list[set[int]]:
        """Wait until every worker is ready and the views partitions are split between them."""
        deadline = time.monotonic() + timeout
        owned: list[set[int]] = []
        while time.monotonic() < deadline:
            try:
                statuses = [(await w.get("/ready"))[0] for w in self.workers]
                owned = await self.owned()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
                statuses = []
            every = set().union(*owned) if owned else set()
            if (
                statuses
                and all(s == 200 for s in statuses)
                and every == set(range(PARTITIONS))
                and sum(len(o) for o in owned) == PARTITIONS
                and all(owned)
            ):
                return owned
            await asyncio.sleep(0.5)
        raise AssertionError(f"workers never settled: partitions {owned}")

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop(30)


def start_cluster(bootstrap: str, data_root: Path, count: int, **env: str) -> Cluster:
    environment = isolated_env(bootstrap, TOPIC_PARTITIONS=str(PARTITIONS), **env)
    workers = []
    for i in range(count):
        worker = Worker(environment, data_dir=data_root / f"worker-{i}")
        workers.append(worker.start())
    return Cluster(bootstrap, environment, workers)


def property_in(partitions: set[int], exclude: tuple[str, ...] = (), properties: int = 80) -> str:
    """A property of the workload whose key hashes to one of ``partitions``."""
    for i in range(properties):
        prop = f"prop-{i}"
        if prop not in exclude and partition_of(prop, PARTITIONS) in partitions:
            return prop
    raise AssertionError(f"no property of the workload in partitions {partitions}")


async def eventually(check: Callable[[], Awaitable[object]], timeout: float = 30, every: float = 0.5):
    """Retry ``check`` until it stops raising AssertionError; the last error if it never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(every)
