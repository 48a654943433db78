"""One worker, one seeded workload, every answer equal to the independent oracle's
(CONTRACT §3-§6): hourly views and unique users, weekly segment patterns, insights, DLQ."""

from __future__ import annotations

import shutil
import time
from collections import Counter

import pytest

from app.generator import BAD_KINDS, Workload
from tests.support.checks import check_all, load_profiles
from tests.support.oracle import HOUR, hour_of, oracle, segments_from
from tests.support.topics import produce
from tests.support.workers import Worker, isolated_env, wait_caught_up, wait_views_committed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SEED = 20261126
VIEWS = 3000  # plus bursts, duplicates, prelude and bad records: ~4,600 records
HOURS = 72


def show(problems: list[str]) -> str:
    return f"{len(problems)} differences from the oracle:\n" + "\n".join(problems[:25])


async def test_one_worker_answers_equal_the_oracle(kafka_bootstrap, capsys, record_property):
    env = isolated_env(kafka_bootstrap)
    worker = Worker(env).start()
    passed = False
    try:
        await worker.wait_ready(180)
        workload = Workload.every_case(SEED)
        profiles = await load_profiles(kafka_bootstrap, worker.url, workload, env["PROFILES_TOPIC"])
        segments = segments_from(profiles)
        assert segments["user-moved"] == "renter" and "user-gone" not in segments

        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR + 17 * 60_000
        records = list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now))
        started = time.monotonic()
        produced = await produce(kafka_bootstrap, env["VIEWS_TOPIC"], records)
        # every views record committed by the worker (its transactions)
        await wait_views_committed(kafka_bootstrap, env, [worker], timeout=240, poll=0.2)
        elapsed = time.monotonic() - started
        await wait_caught_up(kafka_bootstrap, env, timeout=180)

        exp = oracle(produced, profiles, now)
        # The workload really has what it is meant to exercise (a check of the oracle's input).
        for rec, (_, _, intended) in zip(produced, records):
            if intended != "view":
                assert exp.dlq[(rec.partition, rec.offset)] == intended, (intended, rec.value[:200])
        reasons = Counter(exp.dlq.values())
        assert all(reasons[r] > 0 for r in BAD_KINDS) and reasons["late"] > 0, reasons
        stats = exp.stats
        assert stats["duplicate"] > 0 and stats["hourly_late"] > 0 and stats["segment:unknown"] > 0
        assert exp.spikes and any(prev > 0 for _, prev in exp.trends.values()), exp.trends
        # prop-edge: 21 views == 3 x (168 / 24) exactly; prop-hot: 60 == 2 x 30 last week
        assert [v for (p, _), v in exp.spikes.items() if p == "prop-edge"] == [21]
        assert ("investor", "prop-hot") in {(s, p) for s, p, _ in exp.trends}

        rate = len(produced) / elapsed
        record_property("views_records", len(produced))
        record_property("views_per_second", round(rate))
        with capsys.disabled():
            print(f"\n[test_pipeline] {len(produced)} view records ({stats['accepted']} accepted, "
                  f"{stats['duplicate']} duplicates, {len(exp.dlq)} dead letters) processed in "
                  f"{elapsed:.1f}s from first produce: {rate:.0f} events/s; "
                  f"{len(exp.hourly)} (property, hour) windows, {len(exp.weekly)} segment weeks, "
                  f"{len(exp.spikes)} spikes, {len(exp.trends)} trends")

        problems, by_reason = await check_all(kafka_bootstrap, [worker.url], env, exp, produced,
                                              SEED, exactly_once=True)
        assert not problems, show(problems)
        assert by_reason == reasons
        assert worker.alive
        passed = True
    finally:
        worker.stop(30)
        if passed and worker.data_dir is not None:  # kept for a post-mortem otherwise
            shutil.rmtree(worker.data_dir, ignore_errors=True)
