"""A worker's answers against the oracle's: hourly and weekly over HTTP, insights and dead
letters from their topics. Each check returns the differences (empty when equal)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from urllib.parse import quote

import aiohttp

from app.generator import Workload
from tests.support.oracle import HOUR, WEEK, Oracle, Produced, hour_of, iso
from tests.support.topics import Connection, produce, read_topic
from tests.support.workers import without_position

DLQ_HEADERS = ("dlq.reason", "dlq.detail", "dlq.origin.topic", "dlq.origin.partition",
               "dlq.origin.offset")


async def get_all(
    base_url: str, paths: list[str], concurrency: int = 6
) -> dict[str, tuple[int, object]]:
    """GET every path (bounded concurrency); path -> (status, JSON body)."""
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(path: str) -> tuple[str, tuple[int, object]]:
            async with semaphore, session.get(base_url + path) as response:
                body = await response.read()
                try:
                    return path, (response.status, without_position(json.loads(body)))
                except ValueError:
                    return path, (response.status, body.decode(errors="replace"))
        return dict(await asyncio.gather(*(one(p) for p in paths)))


def diff(got: object, want: object) -> str:
    """Only what differs: dict keys, list positions (windows, top properties), else both."""
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        return "; ".join(f"{k}: {diff(got.get(k), want.get(k))}" for k in keys)
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return "; ".join(f"[{i}] {diff(g, w)}" for i, (g, w) in enumerate(zip(got, want)) if g != w)
    return f"got {got!r:.300} expected {want!r:.300}"


async def eventually_equal(base_url: str, expected: dict[str, object], timeout: float = 60,
                           alternatives: dict[str, list] | None = None) -> list[str]:
    """Poll until every path answers 200 with its expected body (or one of its alternatives);
    returns the remaining mismatches (empty on success)."""
    deadline, todo = time.monotonic() + timeout, dict(expected)
    mismatches: list[str] = []
    while True:
        answers = await get_all(base_url, list(todo))
        mismatches = []
        for path, (status, body) in answers.items():
            allowed = [todo[path], *(alternatives or {}).get(path, [])]
            if status == 200 and body in allowed:
                del todo[path]
            else:
                mismatches.append(f"{path}: {status} {diff(body, todo[path])}")
        if not todo or time.monotonic() > deadline:
            return mismatches
        await asyncio.sleep(1.0)


def hour_path(prop: str, hour: int) -> str:
    return f"/api/properties/{quote(prop, safe='')}/views?hour={iso(hour)}"


def week_path(segment: str, week: int, day_only: bool = True) -> str:
    return f"/api/segments/{quote(segment, safe='')}/weeks/{iso(week)[:10] if day_only else iso(week)}"


async def check_hourly(base_url: str, exp: Oracle, seed: int) -> list[str]:
    """Every (property, hour) the oracle counted, a sample of zero hours, and three histories.

    Retention keeps hourly windows 48 h behind stream time: hours starting at least 47 h
    before the partition's stream time must answer exactly; older ones may answer zeros."""
    partition_of = exp.partition_of

    def kept(prop: str, hour: int) -> bool:
        return hour >= exp.stream_time[partition_of[prop]] - 47 * HOUR

    def zeros(prop: str, hour: int) -> dict:
        return {**exp.hour_answer(prop, hour), "views": 0, "uniqueUsers": 0}

    expected, alternatives = {}, {}
    for prop, hour in exp.hourly:
        expected[hour_path(prop, hour)] = exp.hour_answer(prop, hour)
        if not kept(prop, hour):
            alternatives[hour_path(prop, hour)] = [zeros(prop, hour)]
    rng = random.Random(seed)
    props = sorted(partition_of)
    zero_hours = 0
    while zero_hours < 40:
        prop = rng.choice(props)
        hour = hour_of(exp.stream_time[partition_of[prop]] - rng.randrange(0, 47 * HOUR))
        if (prop, hour) not in exp.hourly and kept(prop, hour):
            expected[hour_path(prop, hour)] = zeros(prop, hour)
            zero_hours += 1
    totals = Counter()
    for (prop, _), (views, _users) in exp.hourly.items():
        totals[prop] += views
    busiest = totals.most_common(1)[0][0]
    for prop in dict.fromkeys(["prop-hot", busiest, next(p for p, _ in exp.spikes)]):
        stream_time = exp.stream_time[partition_of[prop]]
        lo, hi = hour_of(stream_time - 47 * HOUR) + HOUR, hour_of(stream_time) + 2 * HOUR
        path = (f"/api/properties/{quote(prop, safe='')}/views/history"
                f"?from={iso(lo)}&to={iso(hi)}")

        def history(end: int, prop: str = prop, lo: int = lo) -> dict:
            return {"propertyId": prop,
                    "windows": [exp.hour_answer(prop, h) for h in range(lo, end, HOUR)]}
        expected[path] = history(hi)
        alternatives[path] = [history(hi + HOUR)]  # `to` read as inclusive
    return await eventually_equal(base_url, expected, timeout=30, alternatives=alternatives)


async def check_weekly(base_url: str, exp: Oracle) -> list[str]:
    """Every (segment, week) the oracle counted, in both weekStart forms, and empty weeks."""
    expected = {week_path(segment, week, day_only=bool(i % 2)): exp.week_answer(segment, week)
                for i, (segment, week) in enumerate(sorted(exp.weekly))}
    some_week = min(week for _, week in exp.weekly)
    for segment, week in (("investor", some_week - 3 * WEEK), ("no-such-segment", some_week)):
        expected[week_path(segment, week)] = exp.week_answer(segment, week)
    return await eventually_equal(base_url, expected, timeout=60)


async def check_insights(
    bootstrap: Connection, topic: str, exp: Oracle, exactly_once: bool
) -> tuple[list[str], int]:
    """The set of insightIds on the topic is the oracle's; every copy of an id carries the same
    type, subject and window; with ``exactly_once`` each id appears once, with the views it
    first held at. Returns (problems, records read)."""
    problems = []
    seen: dict[str, list[dict]] = defaultdict(list)
    records = await read_topic(bootstrap, topic)
    for record in records:
        doc = json.loads(record.value)
        if record.key != doc["insightId"].encode():
            problems.append(f"insight key {record.key!r} is not its insightId {doc['insightId']}")
        seen[doc["insightId"]].append(doc)
    wanted = exp.insights()
    problems += [f"missing insight {i}" for i in sorted(set(wanted) - set(seen))]
    problems += [f"unexpected insight {i}: {seen[i][0]}" for i in sorted(set(seen) - set(wanted))]
    for insight_id, docs in seen.items():
        if exactly_once and len(docs) != 1:
            problems.append(f"insight {insight_id} published {len(docs)} times")
        for doc in docs:
            got = (doc["type"], doc["subject"], doc["windowStart"], doc["windowEnd"])
            if insight_id in wanted and got != wanted[insight_id]:
                problems.append(f"insight {insight_id}: {got} != {wanted[insight_id]}")
    if exactly_once:
        for insight_id, (views, previous) in exp.first_views().items():
            for doc in seen.get(insight_id, ()):
                metrics = doc["metrics"]
                if metrics.get("views") != views or (previous is not None
                                                     and metrics.get("previousViews") != previous):
                    problems.append(f"insight {insight_id}: metrics {metrics}, expected views "
                                    f"{views} previousViews {previous}")
    return problems, len(records)


async def check_dlq(bootstrap: Connection, views_topic: str, exp: Oracle, produced: list[Produced],
                    exactly_once: bool) -> tuple[list[str], Counter]:
    """Dead letters: original key and bytes, the five headers, the oracle's reason for each
    origin record, nothing lost or extra; returns (problems, count by reason)."""
    problems, by_reason, origins = [], Counter(), Counter()
    index = {(rec.partition, rec.offset): rec for rec in produced}
    for record in await read_topic(bootstrap, f"{views_topic}.dlq"):
        headers = {name: value.decode() for name, value in record.headers}
        missing = [h for h in DLQ_HEADERS if h not in headers]
        if missing:
            problems.append(f"dead letter at {record.partition}@{record.offset} lacks {missing}")
            continue
        origin = (int(headers["dlq.origin.partition"]), int(headers["dlq.origin.offset"]))
        by_reason[headers["dlq.reason"]] += 1
        origins[origin] += 1
        source = index.get(origin)
        if headers["dlq.origin.topic"] != views_topic or source is None:
            problems.append(f"dead letter from unknown origin {headers}")
            continue
        if (record.key, record.value) != (source.key, source.value):
            problems.append(f"dead letter of {origin}: key/bytes differ from the original")
        if headers["dlq.reason"] != exp.dlq.get(origin):
            problems.append(f"dead letter of {origin}: reason {headers['dlq.reason']}, "
                            f"expected {exp.dlq.get(origin)} ({source.value[:120]!r})")
    for origin in sorted(set(exp.dlq) - set(origins)):
        problems.append(f"record {origin} ({exp.dlq[origin]}) never reached the DLQ")
    if exactly_once:
        problems += [f"record {o} dead-lettered {n} times" for o, n in origins.items() if n > 1]
        if by_reason != Counter(exp.dlq.values()):
            wanted = dict(Counter(exp.dlq.values()))
            problems.append(f"DLQ counts {dict(by_reason)} != oracle {wanted}")
    return problems, by_reason


async def check_all(
    bootstrap: Connection, urls: list[str], env: dict[str, str], exp: Oracle,
    produced: list[Produced], seed: int, exactly_once: bool,
) -> tuple[list[str], Counter]:
    """Every answer of a run against the oracle: hourly and weekly from each worker in
    ``urls``, the insights and the dead letters of the views from their topics; returns
    (problems, dead letters by reason)."""
    problems = []
    for url in urls:
        problems += await check_hourly(url, exp, seed)
        problems += await check_weekly(url, exp)
    problems += (await check_insights(bootstrap, env["INSIGHTS_TOPIC"], exp, exactly_once))[0]
    dlq, by_reason = await check_dlq(bootstrap, env["VIEWS_TOPIC"], exp, produced, exactly_once)
    return problems + dlq, by_reason


async def load_profiles(bootstrap: Connection, base_url: str, workload: Workload,
                        topic: str) -> list[tuple]:
    """Produce the workload's profiles (made with ``edge_cases``) and wait until the worker
    serves the last one; checks the tombstoned and the moved user. Returns the records."""
    profiles = workload.profiles()
    await produce(bootstrap, topic, profiles)
    deadline = time.monotonic() + 120
    while True:
        answers = await get_all(base_url, ["/api/users/user-last"])
        if answers["/api/users/user-last"][0] == 200:
            break
        assert time.monotonic() < deadline, f"profile user-last never served: {answers}"
        await asyncio.sleep(0.5)
    v1 = next(json.loads(v) for _, v, _ in profiles if v and json.loads(v)["version"] == "1.0")
    answers = await get_all(base_url, ["/api/users/user-last", "/api/users/user-moved",
                                       "/api/users/user-gone", f"/api/users/{v1['userId']}"])
    status, got = answers[f"/api/users/{v1['userId']}"]
    assert status == 200 and {k: got.get(k) for k in v1} == v1, (got, v1)
    status, moved = answers["/api/users/user-moved"]
    assert status == 200 and moved["segment"] == "renter" and moved["version"] == "2.0", moved
    assert moved["profile"]["lastName"] == "user-moved", moved
    assert answers["/api/users/user-gone"][0] == 404, answers["/api/users/user-gone"]
    last = answers["/api/users/user-last"][1]
    assert {k: last[k] for k in ("userId", "segment", "version")} == \
        {"userId": "user-last", "segment": "developer", "version": "2.0"}, last
    return profiles
