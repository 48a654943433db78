"""Disaster recovery with MirrorMaker 2 (docs/disaster-recovery.md), step by step: a primary
and a DR broker of the test's own, the topic configuration exported and applied, MirrorMaker 2
mirroring the input and the insights (SIGKILLed and restarted halfway, so the DR cluster gets
duplicates), a reader of the insights on the primary; then the primary broker is SIGKILLed and
the runbook's failover runs on the DR cluster. The product there reaches the primary's answers
(the oracle's), every insight reaches the reader, and the timings are reported.

Long (two brokers, MirrorMaker, three workers one after the other): ``make soak``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.generator import Workload
from faults._harness import ARTIFACTS, log
from tests.support.broker import Broker, free_port_pair
from tests.support.checks import check_hourly, check_weekly, load_profiles
from tests.support.commands import ReplayProcess, produce_at, run, timestamped
from tests.support.oracle import HOUR, Produced, hour_of, oracle
from tests.support.topics import read_topic
from tests.support.workers import REPO, Worker, free_port, isolated_env, wait_caught_up

pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.timeout(1800)]

SEED = 7117
VIEWS = 3000
HOURS = 72  # of event time, ending 2 h 43 min before the current hour starts
MIRROR_SH = REPO / "tools" / "kafka" / "mirror.sh"
MIRROR_LIBS = REPO / ".local" / "mirror" / "libs"
EPOCH = "1970-01-01T00:00:00Z"  # replay from the start of the mirrored input
SLICE = 300  # records produced between MirrorMaker's clean restart and its SIGKILL (~5 h)


class Mirror:
    """tools/kafka/mirror.sh with the test's clusters, topics and reader group."""

    def __init__(self, home, primary: str, dr: str, topics: list[str], groups: str) -> None:
        self.home = home
        # The repository's properties, and Connect's source offsets committed only on a clean
        # stop: a SIGKILL then re-mirrors what was mirrored since the last one (duplicates).
        self.properties = home / "mm2-test.properties"
        home.mkdir(parents=True, exist_ok=True)
        base = (REPO / "config" / "mirror" / "mm2.properties").read_text()
        self.properties.write_text(base + "\noffset.flush.interval.ms = 600000\n")
        self.env = {**os.environ, "MIRROR_HOME_DIR": str(home), "MIRROR_LIBS_DIR": str(MIRROR_LIBS),
                    "MIRROR_PROPERTIES": str(self.properties), "PRIMARY_BOOTSTRAP": primary,
                    "DR_BOOTSTRAP": dr, "MIRROR_TOPICS": ", ".join(topics),
                    "MIRROR_GROUPS": groups, "MIRROR_START_TIMEOUT": "300"}

    def _sh(self, command: str) -> float:
        started = time.monotonic()
        result = subprocess.run(["bash", str(MIRROR_SH), command], env=self.env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"mirror.sh {command}: {result.stderr[-3000:]}"
        return time.monotonic() - started

    def up(self) -> float:
        return self._sh("up")

    def down(self) -> float:
        return self._sh("down")

    def kill(self) -> None:
        pid = int((self.home / "mirror.pid").read_text())
        os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.2)

    def log_tail(self, lines: int = 5000) -> str:
        path = self.home / "logs" / "mirror.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def sent(placed: list[tuple[int, int]], records: list[tuple]) -> set[tuple[int, bytes]]:
    return {(p, value) for (p, _), (_, value, _) in zip(placed, records)}


async def topic_records(bootstrap: str, topic: str) -> list:
    return await read_topic(bootstrap, topic, timeout=120)


async def wait_mirrored(dr: str, topic: str, wanted: set[tuple[int, bytes]], timeout: float) -> int:
    """Until every (partition, value) of ``wanted`` is on the DR topic; returns its record count."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = await topic_records(dr, topic)
        except AssertionError:  # not created yet
            records = []
        have = {(r.partition, r.value) for r in records}
        if wanted <= have:
            return len(records)
        assert time.monotonic() < deadline, f"{len(wanted - have)} records of {topic} not mirrored"
        await asyncio.sleep(1.0)


async def read_insight_ids(bootstrap: str, topic: str, group: str, limit: int | None) -> list[str]:
    """A downstream reader: its group's committed position, then up to ``limit`` records (all
    when None), committing as it goes; the insightIds it read, in order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                isolation_level="read_committed", enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        ids: list[str] = []
        while limit is None or len(ids) < limit:
            if all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                break
            for records in (await consumer.getmany(timeout_ms=500, max_records=1)).values():
                for record in records:
                    ids.append(json.loads(record.value)["insightId"])
                    position = {TopicPartition(topic, record.partition): record.offset + 1}
                    await consumer.commit(position)
        return ids
    finally:
        await consumer.stop()


async def test_failover_to_the_mirrored_cluster_reaches_the_primary_answers(tmp_path, capsys):
    timings: dict[str, float] = {}
    primary = Broker(ARTIFACTS / "kafka-dr-primary", port=free_port_pair(29392))
    timings["primary broker start"] = primary.start()
    dr = Broker(ARTIFACTS / "kafka-dr-standby", port=free_port_pair(29492))
    timings["DR broker start"] = dr.start()
    env = isolated_env(primary.bootstrap)
    dr_env = {**env, "KAFKA_BOOTSTRAP_SERVERS": dr.bootstrap}
    views, profiles, insights = env["VIEWS_TOPIC"], env["PROFILES_TOPIC"], env["INSIGHTS_TOPIC"]
    reader = f"insights-reader-{env['APP_ID']}"
    mirror = Mirror(ARTIFACTS / f"mirror-{env['APP_ID']}", primary.bootstrap, dr.bootstrap,
                    [views, profiles, insights], reader)
    workers: list[Worker] = []
    replay: ReplayProcess | None = None
    passed = False
    try:
        # -- Preparation (runbook 1): topics on both clusters, from one configuration.
        admin = AIOKafkaAdminClient(bootstrap_servers=primary.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(views, int(env["TOPIC_PARTITIONS"]), 1,
                                                topic_configs={"retention.ms": "-1"})])
        finally:
            await admin.close()
        assert run(env, "create-topics").returncode == 0
        backup = tmp_path / "topics.json"
        assert run(env, "export-topics", "--output", str(backup)).returncode == 0
        applied = run(dr_env, "apply-topics", str(backup))
        assert applied.returncode == 0, applied.stdout + applied.stderr[-2000:]
        timings["MirrorMaker start"] = mirror.up()

        # -- The primary runs the product; the input comes in two halves.
        live = Worker(env)
        live.data_dir = ARTIFACTS / "data" / f"{env['APP_ID']}-primary"
        workers.append(live.start())
        await live.wait_ready(240)
        workload = Workload.every_case(SEED)
        profile_records = await load_profiles(primary.bootstrap, live.url, workload, profiles)
        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR + 17 * 60_000
        records = timestamped(
            list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now)), now)
        half = len(records) // 2
        placed = await produce_at(primary.bootstrap, views, records[:half])
        await wait_mirrored(dr.bootstrap, views, sent(placed, records), timeout=300)
        # A clean restart commits MirrorMaker's position; then a SIGKILL after a few hours of
        # event time: that slice is mirrored again (duplicates within the dedupe horizon, as a
        # crash of MirrorMaker gives a live stream).
        timings["MirrorMaker clean restart"] = mirror.down() + mirror.up()
        placed += await produce_at(primary.bootstrap, views, records[half:half + SLICE])
        await wait_mirrored(dr.bootstrap, views, sent(placed, records), timeout=300)
        mirror.kill()
        timings["MirrorMaker restart after SIGKILL"] = mirror.up()
        placed += await produce_at(primary.bootstrap, views, records[half + SLICE:])
        produced = [Produced(p, o, k, v) for (p, o), (k, v, _) in zip(placed, records)]
        await wait_caught_up(primary.bootstrap, env, timeout=300)
        exp = oracle(produced, profile_records, now)
        assert not await check_hourly(live.url, exp, SEED)  # the primary's answers
        assert not await check_weekly(live.url, exp)

        # A downstream reader of the insights, on the primary, reads about half of them.
        primary_insights = await topic_records(primary.bootstrap, insights)
        read_on_primary = await read_insight_ids(primary.bootstrap, insights, reader,
                                                 len(primary_insights) // 2)
        all_views = {(r.partition, r.value) for r in produced}
        copies = await wait_mirrored(dr.bootstrap, views, all_views, timeout=300)
        await wait_mirrored(dr.bootstrap, insights,
                            {(r.partition, r.value) for r in primary_insights}, timeout=300)
        duplicates = copies - len(produced)
        log(f"DR cluster: {copies} view records for {len(produced)} produced ({duplicates} mirror "
            "duplicates)")
        assert 0 < duplicates <= SLICE, "the MirrorMaker SIGKILL should have left duplicates"
        dr_admin = AIOKafkaAdminClient(bootstrap_servers=dr.bootstrap)
        await dr_admin.start()
        try:  # the reader's offsets, translated through MirrorMaker's checkpoints
            deadline = time.monotonic() + 120
            while not await dr_admin.list_consumer_group_offsets(reader):
                assert time.monotonic() < deadline, "no translated offsets on the DR cluster"
                await asyncio.sleep(1.0)
        finally:
            await dr_admin.close()

        # -- The disaster: the primary broker dies (SIGKILL), its worker with it.
        lost = time.monotonic()
        primary.kill()
        live.kill()

        # -- Failover (runbook 2): stop the mirror, replay the mirrored input into a shadow on
        # the DR cluster, promote it, start it as the live app, move the readers.
        mirror.down()
        replay = ReplayProcess(dr_env, "dr", EPOCH, free_port(),
                               ARTIFACTS / "data" / f"{env['APP_ID']}-dr-shadow",
                               ARTIFACTS / "logs" / f"{env['APP_ID']}-replay-dr.log")
        await replay.wait_for("reached the live end", 300)
        shadow_env = {"APP_ID": f"{env['APP_ID']}-shadow-dr", "VIEWS_TOPIC": views}
        await wait_caught_up(dr.bootstrap, shadow_env, timeout=300)
        timings["replay of the mirrored input"] = time.monotonic() - lost
        assert replay.stop() is not None
        replay = None
        started = time.monotonic()
        promoted = run(dr_env, "promote", "--shadow", "dr")
        assert promoted.returncode == 0, promoted.stdout + promoted.stderr[-3000:]
        timings["promote"] = time.monotonic() - started
        standby = Worker({**dr_env, "APP_ID": f"{env['APP_ID']}-shadow-dr"})
        standby.data_dir = ARTIFACTS / "data" / f"{env['APP_ID']}-dr"
        workers.append(standby.start())
        await standby.wait_ready(240)
        timings["failover, primary lost to DR answering"] = time.monotonic() - lost

        # -- The DR cluster gives the primary's answers.
        problems = await check_hourly(standby.url, exp, SEED)
        assert not problems, problems[:20]
        problems = await check_weekly(standby.url, exp)
        assert not problems, problems[:20]
        dr_insights = await topic_records(dr.bootstrap, insights)
        dr_ids = [json.loads(r.value)["insightId"] for r in dr_insights]
        assert set(dr_ids) == set(exp.insights()), (set(dr_ids) ^ set(exp.insights()))
        # The reader goes on from its translated offsets: no insight missed, some read again.
        read_on_dr = await read_insight_ids(dr.bootstrap, insights, reader, None)
        assert set(read_on_primary) | set(read_on_dr) == set(exp.insights())
        again = len(read_on_primary) + len(read_on_dr) - len(set(read_on_primary) | set(read_on_dr))
        # Dead letters: every rejected record, once per copy the DR cluster holds.
        bad = {(r.partition, r.value) for r in produced if (r.partition, r.offset) in exp.dlq}
        letters = await topic_records(dr.bootstrap, f"{views}.dlq")
        assert {(r.partition, r.value) for r in letters} == bad

        with capsys.disabled():
            print(f"\n[test_disaster_recovery] {len(produced)} views, {duplicates} mirror "
                  "duplicates "
                  f"absorbed; {len(dr_ids)} insight records on the DR topic for "
                  f"{len(set(dr_ids))} ids; the reader read {again} insights twice "
                  f"({len(read_on_primary)} on the primary, {len(read_on_dr)} on the DR cluster); "
                  f"{len(letters)} dead letters for {len(bad)} rejected records")
            for what, seconds in timings.items():
                print(f"  {what}: {seconds:.1f}s")
        passed = True
    finally:
        if replay is not None:
            replay.stop()
        for worker in workers:
            worker.stop(30)
        try:
            mirror.down()
        except AssertionError as exc:
            log(f"mirror.sh down: {exc}")
        if not passed:
            keep = ARTIFACTS / "logs"
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"{env['APP_ID']}-mirror.log").write_text(mirror.log_tail())
            (keep / f"{env['APP_ID']}-dr-server.log").write_text(dr.log_tail(3000))
        primary.destroy()
        dr.destroy()
