"""Workers fed with the seeded workload (app.generator.Workload), and what their HTTP API must
answer for it: the oracle's answers for the records produced (tests/support/oracle.py).

The workload is a 24 h backfill ending now, in event-time order (no late views), with bursts,
duplicates and a record of every bad kind now and then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from app.generator import Workload
from app.web.routing import partition_of
from app.windows import HOUR_MS
from tests.support.oracle import Oracle, oracle
from tests.support.topics import produce
from tests.support.workers import Worker, isolated_env, wait_caught_up

PARTITIONS = 6
SEED = 20261126
VIEWS = 6000


@dataclass
class Cluster:
    bootstrap: str
    env: dict[str, str]
    workers: list[Worker]
    expected: Oracle | None = None
    now_ms: int = 0

    async def feed(self, views: int = VIEWS) -> Oracle:
        """Produce the seeded workload (profiles first) and wait until it is all processed."""
        workload = Workload(seed=SEED, users=400, properties=80, burst_every=1500,
                            duplicate_rate=0.01, bad_rate=0.005)
        profiles = workload.profiles()
        await produce(self.bootstrap, self.env["PROFILES_TOPIC"], profiles)
        # A view takes the segment its user has when it is processed: have every profile on
        # every worker first, so that the expected segments are the profiles'.
        users = [record.key.decode() for record in profiles]
        await eventually(lambda: self._has_profiles(users), timeout=60)
        self.now_ms = int(time.time() * 1000)
        day = 24 * HOUR_MS
        # The properties' lives over the same day, applied before the views come.
        events = workload.property_events(self.now_ms - day - HOUR_MS, day)
        produced_events = await produce(self.bootstrap, self.env["PROPERTY_EVENTS_TOPIC"], events)
        await wait_caught_up(self.bootstrap, self.env, timeout=60)
        # Event times over the last 24 h, the newest a few seconds old.
        records = workload.views(views, self.now_ms - day, day / views, now_ms=self.now_ms)
        produced = await produce(self.bootstrap, self.env["VIEWS_TOPIC"], records)
        await wait_caught_up(self.bootstrap, self.env, timeout=150)
        self.expected = oracle(produced, profiles, self.now_ms, property_events=produced_events)
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
