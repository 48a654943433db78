"""Standby replicas (``STANDBY_REPLICAS=1``): worker B keeps copies of worker A's partitions;
A is SIGKILLed mid-stream and B takes its partitions over. B's restores of them apply only
the changelogs' tails (far fewer records than the changelogs hold), and every answer is exact
against the oracle afterwards."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from faults._harness import Scenario, conclude, log

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE = 300
AT = 0.7
STAGES = ("views", "segment-users", "properties")  # the stages of the views' partition count
RESTORED = re.compile(r"restored (\S+)\[(\d+)\] offsets \d+\.\.\d+: (\d+) records")
LAG = re.compile(r'^property_analytics_standby_lag_records\{partition="(\d+)",stage="([^"]+)"\} (\S+)$', re.M)


async def standby_lag(worker) -> dict[tuple[str, int], float]:  # noqa: ANN001
    status, body = await worker.get("/metrics")
    assert status == 200, body
    return {(stage, int(p)): float(v) for p, stage, v in LAG.findall(body)}


async def changelog_ends(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets(tps)
    finally:
        await consumer.stop()


async def test_a_standby_takes_over_a_killed_workers_partitions_restoring_only_the_tail(
    clusters,
) -> None:
    cluster = clusters(STANDBY_REPLICAS="1")
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=313)
    await scenario.produce_profiles()
    group = cluster.group
    held: set[int] = set()
    log_from = 0

    async def fault() -> None:
        nonlocal log_from
        # B's copies: every views partition A is active for (two workers), caught up to
        # within the commit markers and what the last 200 ms committed.
        lag = await standby_lag(b)
        held.update(p for stage, p in lag if stage == "views")
        assert held, f"worker {b.port} keeps no standby copies: {lag}"
        assert {p for stage, p in lag if stage == "properties"} == held
        log(f"B's copies before the kill: {sorted(lag.items())}")
        log_from = b.log_path.stat().st_size
        log(f"SIGKILL worker {a.port}")
        a.kill()

    def tails() -> dict:
        text = b.log_path.read_bytes()[log_from:].decode(errors="replace")
        restored = {f"{t}[{p}]": int(n) for t, p, n in RESTORED.findall(text)}
        return {"restored_after_kill": restored}

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    entry = await conclude(
        "test_a_standby_takes_over_a_killed_workers_partitions_restoring_only_the_tail",
        "SIGKILL 1 of 2 workers with standby replicas, no restart",
        scenario, [b], fault_at, produced_at, after=tails,
    )
    # B opened every partition of A (the answers above are exact, so it serves them all) and
    # its restores of A's partitions applied only the tails its copies lacked.
    tps = [
        TopicPartition(f"{group}-{stage}-state-changelog", p) for stage in STAGES for p in sorted(held)
    ]
    ends = await changelog_ends(cluster.bootstrap, tps)
    total = sum(ends.values())
    restored = entry["restored_after_kill"]
    tail = sum(n for name, n in restored.items() if name in {f"{t.topic}[{t.partition}]" for t in ends})
    log(f"A's changelog partitions hold {total} records; B restored {tail} of them: {restored}")
    assert total > 5_000, f"too little state to tell a tail from a full restore: {ends}"
    assert tail < total * 0.05, f"B restored {tail} of {total} records: not only the tails"
    # And the copies are gone: what B holds as active is no standby of it any more.
    await asyncio.sleep(1.5)  # the gauges' refresh
    assert not {p for stage, p in await standby_lag(b) if stage == "views"} & held
