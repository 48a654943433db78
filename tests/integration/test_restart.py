"""Exactness after a crash (CONTRACT §4-§5): a worker SIGKILLed mid-stream, twice, and restarted
on its own data dir or on a wiped one (state rebuilt from the changelogs), ends with exactly
the answers and insights of the independent oracle: no view lost or counted twice."""

from __future__ import annotations

import asyncio
import shutil
import time

import pytest

from app.generator import Workload
from tests.support.checks import check_all, load_profiles
from tests.support.oracle import HOUR, hour_of, oracle
from tests.support.kills import kill_mid_stream
from tests.support.topics import produce
from tests.support.workers import Worker, isolated_env, wait_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

VIEWS = 30_000  # ~33,000 records with bursts, duplicates, prelude and bad records
HOURS = 40  # of event time: every hourly window of the stream stays within retention (48 h)
PRODUCE_RATE = 3_000.0  # records/s: about what one worker sustains here, so it is busy


def show(problems: list[str]) -> str:
    return f"{len(problems)} differences from the oracle:\n" + "\n".join(problems[:25])


@pytest.mark.parametrize("wipe", [False, True], ids=["same-data-dir", "wiped-data-dir"])
async def test_sigkill_mid_stream_then_restart_is_exact(
    kafka_bootstrap, capsys, record_property, wipe
):
    env = isolated_env(kafka_bootstrap)
    worker = Worker(env).start()
    views_topic = env["VIEWS_TOPIC"]
    producing: asyncio.Task | None = None
    passed = False
    try:
        await worker.wait_ready(180)
        seed = 4242 + wipe
        # Many users, so that unique users per segment still grow when the kill comes.
        workload = Workload.every_case(seed, users=3000, burst_every=VIEWS // 25)
        profiles = await load_profiles(kafka_bootstrap, worker.url, workload, env["PROFILES_TOPIC"])
        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR + 17 * 60_000
        records = list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now))
        started = time.monotonic()
        producing = asyncio.create_task(
            produce(kafka_bootstrap, views_topic, records, rate=PRODUCE_RATE))

        # Twice: once the worker has committed 40% (then 70%) of the stream, SIGKILL it the
        # moment one of its transactions is open (changelog records written, commit marker
        # not yet), then start it again on the same (or a wiped) data dir.
        changelog = f"{env['APP_ID']}-views-state-changelog"
        kills = []
        for share in (0.4, 0.7):
            kill = await kill_mid_stream(kafka_bootstrap, worker, views_topic, len(records), share,
                                         changelog, wipe, timeout=240)
            kills.append(f"at {time.monotonic() - started:.1f}s with {kill.committed} committed "
                         f"(inside a transaction: {kill.inside}, "
                         f"producer still sending: {not producing.done()})")
            restarted = time.monotonic()

        produced = await producing
        producing = None
        await wait_caught_up(kafka_bootstrap, env, timeout=240)
        recovered = time.monotonic() - restarted
        assert worker.alive, f"worker died; see {worker.log_path}"
        with capsys.disabled():
            variant = "wiped data dir" if wipe else "same data dir"
            print(f"\n[test_restart, {variant}] {len(produced)} view records; SIGKILL "
                  f"{'; '.join(kills)}; caught up {recovered:.1f}s after the last restart")
        record_property("views_records", len(produced))
        record_property("kills", kills)

        exp = oracle(produced, profiles, now)
        assert exp.spikes and exp.trends and "late" in exp.dlq.values()
        # A crash may replay an insight or a dead letter, with the same id (the same origin).
        problems, _ = await check_all(kafka_bootstrap, [worker.url], env, exp, produced, seed,
                                      exactly_once=False)
        assert not problems, show(problems)
        passed = True
    finally:
        if producing is not None:
            producing.cancel()
        worker.stop(30)
        if passed and worker.data_dir is not None:  # kept for a post-mortem otherwise
            shutil.rmtree(worker.data_dir, ignore_errors=True)
