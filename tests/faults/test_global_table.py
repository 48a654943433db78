"""The profiles global table is whole on every worker: three workers, one started after the
profiles were produced and one restarted (SIGKILL) while updates, deletes and hostile records
arrived. Each worker, the moment it says it is ready, serves every profile published before
it started (at that version or a newer one: the bootstrap rule of a GlobalKTable); in the end
each serves every profile at its final version exactly (404 for deleted and unknown users),
and every hostile record is in user.profiles.dlq once, with its reason."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter

import pytest

from app.generator import SEGMENTS, Record, Workload
from faults._harness import Cluster, eventually, log, metric, report, seconds
from tests.support.checks import get_all
from tests.support.topics import produce, read_topic

# Each worker reads user.profiles itself into its own RocksDB table (app.tables.profiles):
# the updates trickle in while the killed worker restarts, so the topic grows during every
# phase of its start-up (reading its checkpoint, bootstrapping, tailing), while the group
# rebalances and the profile-rejects partition changes owner.
pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

USERS = 3000
TRICKLE_S = 15.0


def updates(records: list[Record], seed: int) -> list[Record]:
    """A second wave: 10 % of the profiles move segment (and to v2), 2 % are deleted."""
    rng = random.Random(seed)
    out = []
    for key, value, _ in records:
        if value is None:
            continue
        r = rng.random()
        if r < 0.10:
            doc = json.loads(value)
            doc["segment"] = rng.choice([s for s in SEGMENTS if s != doc["segment"]])
            doc["version"] = "2.0"
            doc["profile"] = {"firstName": "Moved", "lastName": doc["userId"], "company": "Beta"}
            out.append(Record(key, json.dumps(doc).encode(), "profile"))
        elif r < 0.12:
            out.append(Record(key, None, "delete"))
    return out


def hostile(records: list) -> list[tuple[bytes, bytes | None, str]]:
    """Records no replica may apply, each with the reason it must be dead-lettered for: the
    ones that stopped start-up, deleted bookkeeping, overwrote another user or got lost."""
    victim, other = json.loads(records[0][1]), json.loads(records[1][1])
    stolen = dict(victim, segment="stolen")
    deep = dict(other, profile=json.loads('{"a":' * 300 + "1" + "}" * 300))
    return [
        (b"\xff\xfe", None, "bad_id"),  # a tombstone whose key is not UTF-8
        (b"\xffnext-offset:0", None, "bad_id"),  # keyed like the old table's bookkeeping
        (other["userId"].encode(), json.dumps(stolen).encode(), "key_mismatch"),
        (other["userId"].encode(), json.dumps(deep).encode(), "malformed_json"),
        (b"user-ctl", json.dumps({"userId": "user-ctl", "segment": "a\x1fb"}).encode(), "bad_id"),
    ]


async def trickle_in(cluster: Cluster, records: list, seconds: float, chunks: int = 30) -> list:
    """Produce ``records`` in ``chunks`` even parts spread over ``seconds``."""
    size = max(len(records) // chunks, 1)
    produced = []
    for start in range(0, len(records), size):
        produced += await produce(cluster.bootstrap, cluster.topic("profiles"),
                                  records[start : start + size])
        await asyncio.sleep(seconds / chunks)
    return produced


def answers_after(records: list) -> dict[str, object]:
    """path -> body of GET /api/users/<id> after ``records``: the last value, None after a
    tombstone (404)."""
    table: dict[str, object] = {}
    for key, value, *_ in records:
        table[key.decode()] = None if value is None else json.loads(value)
    return {f"/api/users/{user}": doc for user, doc in table.items()}


def final_answers(records: list) -> dict[str, object]:
    return {**answers_after(records), "/api/users/nobody-at-all": None}


def allowed_from(before: list, after: list) -> dict[str, list]:
    """path -> the answers a worker started after ``before`` was produced may give while
    ``after`` arrives: the state after ``before``, or any later version of the user."""
    allowed = {path: [body] for path, body in answers_after(before).items()}
    for path, body in answers_after_each(after):
        if path in allowed:
            allowed[path].append(body)
    return allowed


def answers_after_each(records: list):  # noqa: ANN201
    for key, value, *_ in records:
        yield f"/api/users/{key.decode()}", None if value is None else json.loads(value)


async def at_ready(worker, allowed: dict[str, list]) -> list[str]:
    """Wait until ``worker`` is ready, then at once: every profile published before it started
    must be served (at that version or a newer one)."""
    await worker.wait_ready(180)
    got = await get_all(worker.url, sorted(allowed))
    wrong = []
    for path, (status, body) in got.items():
        answer = None if status == 404 else body
        if status not in (200, 404) or answer not in allowed[path]:
            wrong.append(f"{worker.port} {path} at ready: {status} {body!r}, allowed {allowed[path]!r}")
    return wrong


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


async def dead_letters(cluster: Cluster, expected: Counter, timeout: float = 60) -> list[str]:
    """Mismatches between user.profiles.dlq and ``expected`` ((partition, offset), reason)."""
    deadline = time.monotonic() + timeout
    while True:
        letters: Counter = Counter()
        for record in await read_topic(cluster.bootstrap, cluster.topic("profiles.dlq")):
            headers = {k: v.decode() for k, v in record.headers}
            origin = (int(headers["dlq.origin.partition"]), int(headers["dlq.origin.offset"]))
            letters[(origin, headers["dlq.reason"])] += 1
        wrong = [f"dlq {key}: {letters[key]} copies, expected {expected[key]}"
                 for key in sorted(set(letters) | set(expected)) if letters[key] != expected[key]]
        if not wrong or time.monotonic() > deadline:
            return wrong
        await asyncio.sleep(1.0)


async def test_every_worker_serves_every_profile(clusters) -> None:
    cluster: Cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    first = Workload(seed=808, users=USERS).profiles()
    await produce(cluster.bootstrap, cluster.topic("profiles"), first)
    second = updates(first, seed=809)
    while_down, while_restarting = second[: len(second) // 3], second[len(second) // 3 :]
    bad = hostile(first)
    # The hostile records arrive among the updates, while b restarts.
    mixed = list(while_restarting)
    for i, record in enumerate(bad):
        mixed.insert((i + 1) * len(mixed) // (len(bad) + 1), record[:2])

    log(f"produced {len(first)} profiles; starting a third worker late")
    c_started = time.monotonic()
    c = cluster.add()
    c_check = asyncio.create_task(at_ready(c, allowed_from(first, second)))
    log(f"SIGKILL worker {b.port}; updates and deletes arrive while it is down and restarts")
    b.kill()
    await produce(cluster.bootstrap, cluster.topic("profiles"), while_down)
    b_started = time.monotonic()
    b.start()
    b_check = asyncio.create_task(at_ready(b, allowed_from(first + while_down, while_restarting)))
    trickled = await trickle_in(cluster, mixed, seconds=TRICKLE_S)
    bootstrap_wrong = await c_check + await b_check
    await cluster.ready(a, b, c)

    answers = final_answers(first + second)
    done: dict[str, float] = {}

    async def check(worker, since: float, name: str) -> list[str]:
        mismatches = await served(worker, answers, timeout=120)
        done[name] = seconds(since, time.monotonic())
        return mismatches

    results = await asyncio.gather(
        check(a, b_started, "steady_complete_s"),
        check(b, b_started, "restarted_complete_s"),
        check(c, c_started, "late_complete_s"),
    )
    mismatches = [m for r in results for m in r]
    reasons = {record[:2]: record[2] for record in bad}
    expected_letters = Counter({((p.partition, p.offset), reasons[(p.key, p.value)]): 1
                                for p in trickled if (p.key, p.value) in reasons})
    assert len(expected_letters) == len(bad)
    letters_wrong = await dead_letters(cluster, expected_letters)
    report(
        "test_every_worker_serves_every_profile",
        "profiles table: 3 workers, one started late, one SIGKILLed and restarted during updates "
        "and hostile records",
        profiles=sum(1 for body in answers.values() if body is not None),
        deleted=sum(1 for body in answers.values() if body is None),
        records=len(first) + len(second) + len(bad),
        exact=not (mismatches or bootstrap_wrong or letters_wrong),
        mismatches=len(mismatches),
        wrong_at_ready=len(bootstrap_wrong),
        dead_letters_wrong=len(letters_wrong),
        # invalid records each worker's table skipped (every worker reads every record)
        skipped=await metric(cluster.alive, 'property_analytics_profiles_records_total{outcome="skipped"}'),
        broker=cluster.bootstrap,
        **done,
    )
    assert not bootstrap_wrong, "\n".join(bootstrap_wrong[:20])
    assert not mismatches, "\n".join(mismatches[:20])
    assert not letters_wrong, "\n".join(letters_wrong)
    assert all(w.alive for w in (a, b, c)), cluster.log_tails(40)
