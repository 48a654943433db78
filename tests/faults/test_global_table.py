"""The profiles GlobalTable is whole on every worker: three workers, one started after the
profiles were produced and one restarted (SIGKILL) while updates and deletes arrived, each
answer GET /api/users/<id> for every profile exactly (404 for deleted and unknown users)."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

from faults._harness import Cluster, eventually, log, metric, report, seconds
from integration._oracle import SEGMENTS, Workload, produce

# faust 0.15.3 lost profile updates here twice (a record its changelog queue dropped, and a
# user.profiles record its stream skipped and committed past): README "Faults", "The
# GlobalTable". The updates trickle in while the killed worker restarts, so the changelog grows
# during every phase of its recovery and the profiles partition changes owner meanwhile.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

USERS = 3000
TRICKLE_S = 15.0


def updates(records: list, seed: int) -> list:
    """A second wave: 10 % of the profiles move segment (and to v2), 2 % are deleted."""
    rng = random.Random(seed)
    out = []
    for key, value in records:
        if value is None:
            continue
        r = rng.random()
        if r < 0.10:
            doc = json.loads(value)
            doc["segment"] = rng.choice([s for s in SEGMENTS if s != doc["segment"]])
            doc["version"] = "2.0"
            doc["profile"] = {"firstName": "Moved", "lastName": doc["userId"], "company": "Beta"}
            out.append((key, json.dumps(doc).encode()))
        elif r < 0.12:
            out.append((key, None))
    return out


async def trickle_in(cluster: Cluster, records: list, seconds: float, chunks: int = 30) -> None:
    """Produce ``records`` in ``chunks`` even parts spread over ``seconds``."""
    size = max(len(records) // chunks, 1)
    for start in range(0, len(records), size):
        await produce(cluster.bootstrap, cluster.topic("profiles"), records[start : start + size])
        await asyncio.sleep(seconds / chunks)


def final_answers(records: list) -> dict[str, object]:
    """path -> expected body of GET /api/users/<id>: the last value, or 404 after a tombstone."""
    table: dict[str, object] = {}
    for key, value in records:
        table[key.decode()] = None if value is None else json.loads(value)
    table["nobody-at-all"] = None
    return {f"/api/users/{user}": doc for user, doc in table.items()}


async def served(worker, answers: dict[str, object], timeout: float) -> list[str]:
    """Mismatches left once ``worker`` serves every profile (and 404s every deleted user)."""
    present = {path: body for path, body in answers.items() if body is not None}
    absent = [path for path, body in answers.items() if body is None]
    mismatches = await eventually(worker, present, timeout)
    deadline = time.monotonic() + timeout
    while True:
        statuses = {path: (await worker.get(path))[0] for path in absent}
        wrong = [f"{worker.port} {p}: {s}, expected 404" for p, s in statuses.items() if s != 404]
        if not wrong or time.monotonic() > deadline:
            return mismatches + wrong
        await asyncio.sleep(1.0)


async def test_every_worker_serves_every_profile(clusters) -> None:
    cluster: Cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    workload = Workload(seed=808, views_topic=cluster.topic("views"),
                        profiles_topic=cluster.topic("profiles"), users=USERS)
    first = workload.profiles()
    await produce(cluster.bootstrap, cluster.topic("profiles"), first)
    log(f"produced {len(first)} profiles; starting a third worker late")

    c_started = time.monotonic()
    c = cluster.add()
    log(f"SIGKILL worker {b.port}; updates and deletes arrive while it is down and restarts")
    b.kill()
    second = updates(first, seed=809)
    while_down, while_restarting = second[: len(second) // 3], second[len(second) // 3 :]
    await produce(cluster.bootstrap, cluster.topic("profiles"), while_down)
    b_started = time.monotonic()
    b.start()
    # The rest trickles in while b recovers its GlobalTable and the group rebalances: the
    # changelog grows during every phase of b's recovery.
    trickle = asyncio.create_task(trickle_in(cluster, while_restarting, seconds=TRICKLE_S))
    await cluster.ready(a, b, c)
    await trickle

    answers = final_answers(first + second)
    done: dict[str, float] = {}

    async def check(worker, since: float, name: str) -> list[str]:
        mismatches = await served(worker, answers, timeout=180)
        done[name] = seconds(since, time.monotonic())
        return mismatches

    results = await asyncio.gather(
        check(a, b_started, "steady_complete_s"),
        check(b, b_started, "restarted_complete_s"),
        check(c, c_started, "late_complete_s"),
    )
    mismatches = [m for r in results for m in r]
    report(
        "test_every_worker_serves_every_profile",
        "GlobalTable: 3 workers, one started late, one SIGKILLed and restarted during updates",
        profiles=sum(1 for body in answers.values() if body is not None),
        deleted=sum(1 for body in answers.values() if body is None),
        records=len(first) + len(second),
        exact=not mismatches,
        mismatches=len(mismatches),
        # records faust skipped or lost, read directly by the workers (user.profiles and the
        # GlobalTable changelog)
        refetched=await metric(cluster.alive, "property_analytics_records_refetched_total"),
        broker=cluster.bootstrap,
        **done,
    )
    assert not mismatches, "\n".join(mismatches[:20])
