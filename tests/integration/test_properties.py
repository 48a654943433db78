"""The property aggregate on a real broker and a real worker, SIGKILLed mid-stream twice
(once while it applies property events, once while it counts views, the second time on a
wiped data dir, so both stages restore from their changelogs), against the independent
oracle: every aggregate, ``asOf`` answers at sampled times, histories (paged), the property
dead letters, every insight with the property it carries, and rented_property_demand. One
property has a long history (``LONG_EVENTS`` events, so dozens of snapshots, restored from the
changelog after the wiped data dir), and views all along it: its ``asOf`` answers and the
insights its views make are checked at many times. Ends with the rebuild command, which must
find no difference (snapshots included)."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time
from collections import Counter
from urllib.parse import quote

import pytest

from app.generator import Record, Workload
from app.windows import parse_iso
from tests.support.checks import check_hourly, check_insights, diff, get_all, load_profiles
from tests.support.commands import run
from tests.support.kills import Kill, kill_mid_stream
from tests.support.oracle import HOUR, hour_of, iso, oracle
from tests.support.topics import produce, read_topic
from tests.support.workers import Worker, isolated_env, wait_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SEED = 8128
VIEWS = 6000
HOURS = 30
PROPERTIES = 1200
SPIKE_MIN = 8  # so that the rented popular properties draw "demand" most hours
LONG = "long-history"
LONG_EVENTS = 2000  # 62 snapshots


def long_history(start: int) -> list[Record]:
    """``LONG``'s life over the views' span: created, then updated (its price each time),
    rented and relisted every 250 events, ``LONG_EVENTS`` events in all, in time order."""
    step = HOURS * HOUR // LONG_EVENTS
    out = [Workload.property_event("long-0", "created", start, LONG, title="Long", city="Nantes",
                                   price=0)]
    for i in range(1, LONG_EVENTS):
        ts = start + i * step
        if i % 250 == 100:
            out.append(Workload.property_event(f"long-{i}", "rented", ts, LONG, rent=i,
                                               tenantId=f"t-{i}"))
        elif i % 250 == 200:
            out.append(Workload.property_event(f"long-{i}", "updated", ts, LONG, status="listed",
                                               price=i))
        else:
            out.append(Workload.property_event(f"long-{i}", "updated", ts, LONG, price=i))
    return out


def with_long_views(records: list[Record], start: int) -> list[Record]:
    """``records`` with ``SPIKE_MIN`` + 2 views of ``LONG`` an hour, each placed where the
    stream has reached its time (not late), so that every hour's later views are joined with
    the property as it was then (spike and demand insights carry it)."""
    extra = [
        (start + h * HOUR + n * 5 * 60_000 + 7,
         Workload.view(f"long-view-{h}-{n}", start + h * HOUR + n * 5 * 60_000 + 7, LONG,
                       f"user-{(h * 13 + n) % 1500}"))
        for h in range(HOURS) for n in range(SPIKE_MIN + 2)
    ]
    out, reached = [], 0
    for record in records:
        try:
            reached = max(reached, parse_iso(json.loads(record.value)["timestamp"]))
        except Exception:  # noqa: BLE001 - a bad record: no time of its own
            pass
        while extra and extra[0][0] <= reached:
            out.append(extra.pop(0)[1])
        out.append(record)
    return out + [view for _, view in extra]


def show(problems: list[str]) -> str:
    return f"{len(problems)} differences from the oracle:\n" + "\n".join(problems[:25])


def seg(prop: str) -> str:
    return quote(prop, safe="")


def kill_note(topic: str, total: int, kill: Kill, wipe: bool) -> str:
    inside = kill.inside
    return f"{topic} at {kill.committed}/{total} (inside a transaction: {inside}, wiped: {wipe})"


async def test_aggregates_as_of_histories_and_insights_are_exact_after_sigkills(
    kafka_bootstrap, capsys, record_property
):
    env = isolated_env(kafka_bootstrap, SPIKE_MIN_VIEWS=str(SPIKE_MIN))
    worker = Worker(env).start()
    topic = env["PROPERTY_EVENTS_TOPIC"]
    app_id = env["APP_ID"]
    passed = False
    try:
        await worker.wait_ready(180)
        workload = Workload.every_case(SEED, properties=PROPERTIES, users=1500,
                                       burst_every=VIEWS // 20)
        profiles = await load_profiles(kafka_bootstrap, worker.url, workload, env["PROFILES_TOPIC"])
        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR + 17 * 60_000

        # The properties' lives over the views' span, then the views: each view meets its
        # property as it was at the view's time (docs/behaviour.md).
        events = workload.property_events(start - HOUR, (HOURS + 1) * HOUR)
        # Hostile records among them: each dead-lettered with its reason, or (a valid id made
        # of ':' '/' '%' and CJK) an aggregate like any other.
        odd, t = "a:b/c%d 日本", start
        events += [
            Workload.property_event("odd-1", "created", t, odd, title="Odd", city="x", price=5),
            Workload.property_event("odd-2", "rented", t + HOUR, odd, tenantId="t:1/2"),
            Record(odd.encode(), b'{"eventId": "odd-3", "eventType": "property.upd', "malformed_json"),
            Workload.property_event("odd-4", "updated", t, "other")._replace(key=b"prop-1"),
            Workload.property_event("odd-5", "sold", t + HOUR, odd),
            Workload.property_event("odd-6", "created", t, "", title="x", city="y", price=1),
        ]
        events += long_history(start)
        producing = asyncio.create_task(produce(kafka_bootstrap, topic, events, rate=1500.0))
        kill = await kill_mid_stream(kafka_bootstrap, worker, topic, len(events), 0.4,
                                     f"{app_id}-properties-state-changelog", wipe=False)
        kills = [kill_note(topic, len(events), kill, wipe=False)]
        produced_events = await producing
        await worker.wait_ready(180)
        await wait_caught_up(kafka_bootstrap, env, timeout=120)

        records = list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now))
        records = with_long_views(records, start)
        producing = asyncio.create_task(
            produce(kafka_bootstrap, env["VIEWS_TOPIC"], records, rate=3000.0))
        kill = await kill_mid_stream(kafka_bootstrap, worker, env["VIEWS_TOPIC"], len(records),
                                     0.5, f"{app_id}-views-state-changelog", wipe=True)
        kills.append(kill_note(env["VIEWS_TOPIC"], len(records), kill, wipe=True))
        produced = await producing
        await wait_caught_up(kafka_bootstrap, env, timeout=180)
        assert worker.alive, f"worker died; see {worker.log_path}"

        exp = oracle(produced, profiles, now, property_events=produced_events,
                     spike_min=SPIKE_MIN)
        # The input has what it is meant to exercise.
        for rec, (_, _, intended) in zip(produced_events, events):
            if intended in ("invalid_transition", "malformed_json"):
                assert exp.property_dlq[(rec.partition, rec.offset)] == intended
        assert {"key_mismatch", "bad_type", "bad_id"} <= set(exp.property_dlq.values())
        assert exp.property_at("a:b/c%d 日本")["status"] == "rented"
        statuses = Counter(exp.property_at(p)["status"] for p in exp.histories if exp.histories[p])
        assert statuses["rented"] > 0 and statuses["listed"] > 0, statuses
        assert exp.demand, "no rented_property_demand expected: the workload misses the case"
        with capsys.disabled():
            print(f"\n[test_properties] {len(produced_events)} property events, "
                  f"{len(produced)} view records; {dict(statuses)}; {len(exp.demand)} demand "
                  f"insights; SIGKILL: {'; '.join(kills)}")
        record_property("kills", kills)

        # Every aggregate, and a property that never was.
        props = sorted(exp.histories) + ["prop-never", "a:b/c"]
        answers = await get_all(worker.url, [f"/api/properties/{seg(p)}" for p in props])
        problems = []
        for prop in props:
            status, body = answers[f"/api/properties/{seg(prop)}"]
            want = exp.property_at(prop)
            if want is None:
                if status != 404 or set(body) != {"error"}:
                    problems.append(f"{prop}: {status} {body}, expected 404")
            elif (status, body) != (200, want):
                problems.append(f"{prop}: {status} {diff(body, want)}")
        assert not problems, show(problems)

        # asOf at sampled times: each event's own time, just before it, and between two.
        rng = random.Random(SEED)
        busy = [p for p in exp.histories if len(exp.histories[p]) > 1]
        sample = rng.sample(busy, min(60, len(busy)))
        paths = {}
        for prop in sample:
            times = [e.ts for e in exp.histories[prop]]
            for ts in {times[0] - 1, *times, *(t + 1 for t in times), times[-1] + HOUR}:
                paths[f"/api/properties/{seg(prop)}?asOf={quote(iso(ts))}"] = (prop, ts)
        answers = await get_all(worker.url, list(paths))
        for path, (prop, ts) in paths.items():
            status, body = answers[path]
            want = exp.property_at(prop, ts)
            if want is None:
                if status != 404:
                    problems.append(f"{path}: {status} {body}, expected 404")
            elif status != 200 or body != {**want, "asOf": iso(ts)}:
                problems.append(f"{path}: {status} {diff(body, want)}")
        assert not problems, show(problems)

        # The long history, restored with its snapshots: asOf around every 32nd event and at
        # 300 random times, against the oracle's fold of the whole history.
        assert len(exp.histories[LONG]) == LONG_EVENTS
        times = [e.ts for e in exp.histories[LONG]]
        long_times = {t + d for t in times[31::32] for d in (-1, 0, 1)}
        long_times |= {rng.randrange(times[0] - HOUR, times[-1] + HOUR) for _ in range(300)}
        paths = {f"/api/properties/{LONG}?asOf={quote(iso(ts))}": ts for ts in long_times}
        answers = await get_all(worker.url, list(paths))
        for path, ts in paths.items():
            status, body = answers[path]
            want = exp.property_at(LONG, ts)
            expected = (404, None) if want is None else (200, {**want, "asOf": iso(ts)})
            if (status, body if want is not None else None) != expected:
                problems.append(f"{path}: {status} {body}, expected {expected}")
        assert not problems, show(problems)
        long_insights = [i for i in exp.about if f":{LONG}:" in i]
        assert any(i.startswith("rented_property_demand") for i in long_insights), long_insights

        # Histories, paged two events at a time.
        for prop in sample:
            got, after = [], 0
            while after is not None:
                status, body = (await get_all(
                    worker.url, [f"/api/properties/{seg(prop)}/events?limit=2&afterVersion={after}"]
                )).popitem()[1]
                assert status == 200, body
                got += body["events"]
                after = body["nextAfterVersion"]
            if got != exp.property_events(prop):
                problems.append(f"history of {prop}: {diff(got, exp.property_events(prop))}")
        assert not problems, show(problems)

        # Property dead letters: exactly once each, with the oracle's reason.
        reasons = Counter()
        for record in await read_topic(kafka_bootstrap, f"{topic}.dlq"):
            headers = {k: v.decode() for k, v in record.headers}
            origin = (int(headers["dlq.origin.partition"]), int(headers["dlq.origin.offset"]))
            reasons[origin] += 1
            if headers["dlq.reason"] != exp.property_dlq.get(origin):
                problems.append(f"dead letter {origin}: {headers['dlq.reason']}, expected "
                                f"{exp.property_dlq.get(origin)}")
        if set(reasons) != set(exp.property_dlq) or any(n != 1 for n in reasons.values()):
            problems.append(f"property dead letters {dict(reasons)} != {exp.property_dlq}")
        assert not problems, show(problems)

        # Hourly counts (views of rented properties count), insights (a kill may replay one,
        # with the same id and content), and the property each insight carries.
        problems = await check_hourly(worker.url, exp, SEED)
        assert not problems, show(problems)
        problems, _ = await check_insights(kafka_bootstrap, env["INSIGHTS_TOPIC"], exp,
                                           exactly_once=False)
        assert not problems, show(problems)
        for record in await read_topic(kafka_bootstrap, env["INSIGHTS_TOPIC"]):
            doc = json.loads(record.value)
            if doc.get("property") != exp.about.get(doc["insightId"]):
                problems.append(f"{doc['insightId']}: property {doc.get('property')}, expected "
                                f"{exp.about.get(doc['insightId'])}")
        assert not problems, show(problems)
        demand = {f"rented_property_demand:{quote(p, safe='')}:{iso(h)}": vu
                  for (p, h), vu in exp.demand.items()}
        for record in await read_topic(kafka_bootstrap, env["INSIGHTS_TOPIC"]):
            doc = json.loads(record.value)
            if doc["insightId"] in demand:
                views, users = demand[doc["insightId"]]
                if doc["metrics"] != {"views": views, "uniqueUsers": users}:
                    problems.append(f"{doc['insightId']}: {doc['metrics']} != {views}, {users}")
        assert not problems, show(problems)

        rebuilt = run(env, "rebuild-properties", timeout=120)
        assert rebuilt.returncode == 0, rebuilt.stdout[-3000:] + rebuilt.stderr[-3000:]
        assert rebuilt.stdout.strip().endswith(": 0 differences"), rebuilt.stdout
        created = len([p for p in exp.histories if exp.histories[p]])
        events_applied = sum(len(h) for h in exp.histories.values())
        assert f"rebuilt {created} properties from {events_applied} events" in rebuilt.stdout
        passed = True
    finally:
        worker.stop(30)
        if passed and worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
