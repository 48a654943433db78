"""A live worker meets records that make its views stage raise (``tests.support.failing_app``
injects the failure after the view was applied, so its partial changes are real).

By default each such record goes to ``property.views.dlq`` with reason ``processing_error``, its
changes are rolled back, and the partition goes on: the worker never restarts, and every answer
equals an uninterrupted run over the input without those records. With
``PROCESSING_ERRORS=fail`` the worker stops at the first one instead, with nothing past it
committed.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import time

import pytest

from app.generator import Workload
from tests.support.checks import check_all, check_hourly, check_weekly, load_profiles
from tests.support.commands import run
from tests.support.failing_app import POISON_PREFIX
from tests.support.oracle import HOUR, Produced, hour_of, oracle
from tests.support.topics import committed_views, produce, read_topic
from tests.support.workers import Worker, isolated_env, wait_caught_up, wait_views_committed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SEED = 20261206
VIEWS = 1500
HOURS = 48
FAILING_APP = "tests.support.failing_app"


def with_poison(records: list[tuple], count: int, rng: random.Random) -> tuple[list[tuple], set[int]]:
    """The records with ``count`` of their views renamed ``poison-<eventId>``; and their indexes."""
    views = [i for i, (_, _, intended) in enumerate(records) if intended == "view"]
    chosen = set(rng.sample(views, count))
    out = list(records)
    for i in chosen:
        key, value, intended = out[i]
        doc = json.loads(value)
        doc["eventId"] = POISON_PREFIX + doc["eventId"]
        out[i] = (key, json.dumps(doc).encode(), intended)
    return out, chosen


async def test_records_that_make_a_stage_raise_are_dead_lettered_and_the_rest_is_exact(
    kafka_bootstrap, capsys
):
    env = isolated_env(kafka_bootstrap)
    worker = Worker(env, app_module=FAILING_APP).start()
    passed = False
    try:
        await worker.wait_ready(180)
        pid = worker.proc.pid
        workload = Workload(seed=SEED, edge_cases=True, burst_every=500)
        profiles = await load_profiles(kafka_bootstrap, worker.url, workload, env["PROFILES_TOPIC"])
        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR
        records = list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now))
        records, poisoned = with_poison(records, 12, random.Random(SEED))
        produced = await produce(kafka_bootstrap, env["VIEWS_TOPIC"], records)
        await wait_views_committed(kafka_bootstrap, env, [worker])
        await wait_caught_up(kafka_bootstrap, env, timeout=180)

        # The answers of an uninterrupted run without the failing records...
        failing = [produced[i] for i in sorted(poisoned)]
        exp = oracle([p for i, p in enumerate(produced) if i not in poisoned], profiles, now)
        # ...which are dead letters, once each, with their original key and bytes.
        for rec in failing:
            exp.dlq[(rec.partition, rec.offset)] = "processing_error"
        problems, by_reason = await check_all(kafka_bootstrap, [worker.url], env, exp, produced,
                                              SEED, exactly_once=True)
        assert not problems, problems[:20]
        assert by_reason["processing_error"] == len(failing)

        dead = await read_topic(kafka_bootstrap, f"{env['VIEWS_TOPIC']}.dlq")
        details = sorted(
            dict(d.headers)["dlq.detail"].decode() for d in dead
            if dict(d.headers)["dlq.reason"] == b"processing_error"
        )
        wanted = sorted(
            f"LookupError: injected failure for {json.loads(rec.value)['eventId']}" for rec in failing
        )
        assert details == wanted

        status, metrics = await worker.get("/metrics")
        assert status == 200
        assert (
            'property_analytics_processing_errors_total{error="LookupError",stage="views"} 12.0'
            in metrics
        ), [line for line in metrics.splitlines() if "processing_errors" in line]
        log = worker.log_path.read_text(errors="replace")
        assert log.count("processing failed (LookupError: injected failure") == len(failing)
        assert worker.alive and worker.proc.pid == pid  # never restarted

        # The bug is fixed: the worker runs without the fault, and `redrive` sends the
        # dead letters back. They are read again after everything else (as the oracle reads
        # them: appended to their partitions), once each, however often redrive lists.
        worker.stop(30)
        worker.app_module = "app.main"
        worker.start()
        await worker.wait_ready(180)
        listed = run(env, "redrive")
        assert listed.returncode == 0, listed.stdout + listed.stderr
        assert sorted(line.split(" <- ")[1].split(" ")[0] for line in listed.stdout.splitlines()) \
            == sorted(f"{env['VIEWS_TOPIC']}[{r.partition}]@{r.offset}" for r in failing)
        assert "12 dead letters can be sent back (--apply)" in listed.stderr
        sent = run(env, "redrive", "--apply")
        assert sent.returncode == 0 and "12 dead letters sent back" in sent.stderr, sent.stderr
        await wait_views_committed(kafka_bootstrap, env, [worker])
        await wait_caught_up(kafka_bootstrap, env, timeout=180)
        views = await read_topic(kafka_bootstrap, env["VIEWS_TOPIC"])
        resent = [Produced(v.partition, v.offset, v.key, v.value) for v in views
                  if any(name == "dlq.redriven.from" for name, _ in v.headers)]
        assert sorted(r.value for r in resent) == sorted(r.value for r in failing)
        kept = [p for i, p in enumerate(produced) if i not in poisoned]
        exp = oracle(kept + resent, profiles, now)
        problems = await check_hourly(worker.url, exp, SEED)
        assert not problems, problems[:20]
        problems = await check_weekly(worker.url, exp)
        assert not problems, problems[:20]
        with capsys.disabled():
            print(f"\n[processing errors] {len(produced)} views, {len(failing)} failed in the "
                  "views stage: dead-lettered once each, every answer equal to the oracle; "
                  "redriven once fixed, and counted as the oracle counts them")
        passed = True
    finally:
        worker.stop(30)
        if passed and worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)


async def test_fail_mode_stops_the_worker_at_the_first_failing_record(kafka_bootstrap):
    env = isolated_env(kafka_bootstrap, PROCESSING_ERRORS="fail", TOPIC_PARTITIONS="1")
    worker = Worker(env, app_module=FAILING_APP).start()
    try:
        await worker.wait_ready(180)
        workload = Workload(seed=SEED, edge_cases=True, burst_every=500)
        await load_profiles(kafka_bootstrap, worker.url, workload, env["PROFILES_TOPIC"])
        now = int(time.time() * 1000)
        records = list(workload.views(40, hour_of(now) - 2 * HOUR, 60_000, now_ms=now))
        key, value, intended = records[20]
        doc = json.loads(value)
        doc["eventId"] = POISON_PREFIX + doc["eventId"]
        records[20] = (key, json.dumps(doc).encode(), intended)
        produced = await produce(kafka_bootstrap, env["VIEWS_TOPIC"], records)
        poison_offset = produced[20].offset

        deadline = time.monotonic() + 120
        while worker.alive:
            assert time.monotonic() < deadline, "the worker did not stop"
            await asyncio.sleep(0.5)
        assert worker.proc.returncode == 70
        done, total = await committed_views(kafka_bootstrap, env["APP_ID"], env["VIEWS_TOPIC"])
        assert done <= poison_offset < total  # nothing at or past the failing record committed
        assert "processing a batch failed" in worker.log_path.read_text(errors="replace")
        dead = await read_topic(kafka_bootstrap, f"{env['VIEWS_TOPIC']}.dlq")
        assert [d for d in dead if dict(d.headers)["dlq.reason"] == b"processing_error"] == []
    finally:
        worker.stop(30)
