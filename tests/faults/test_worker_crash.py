"""Faults 1, 2 and 6: workers SIGKILLed mid-stream (no shutdown, no commit, no flush) and
restarted, once with their local state wiped; and a worker frozen (SIGSTOP) past its session
timeout, then resumed (SIGCONT): a zombie whose commits the group must refuse.

After the group has caught up, every hourly and weekly answer, the insight ids and the dead
letters must equal what one uninterrupted run gives (the oracle), exactly.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal

import pytest

from faults._harness import Scenario, conclude, log, metric

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE = 300  # views/s: well under what two workers sustain, so the lag before a fault is ~0
AT = 0.8  # the fault comes 80 % into the stream (+1 s), so recovery, not production, dominates
RESTART_AFTER = 2.0  # seconds between the kill and the restart


async def test_sigkill_one_of_two_workers_mid_stream(clusters) -> None:
    cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=101)
    await scenario.produce_profiles()

    async def fault() -> None:
        log(f"SIGKILL worker {a.port}")
        a.kill()
        await asyncio.sleep(RESTART_AFTER)
        a.start()

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    await conclude(
        "test_sigkill_one_of_two_workers_mid_stream",
        f"SIGKILL 1 of 2 workers, restart after {RESTART_AFTER:g} s",
        scenario, [a, b], fault_at, produced_at,
    )


async def test_sigkill_both_workers_mid_stream(clusters) -> None:
    cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=202)
    await scenario.produce_profiles()

    async def fault() -> None:
        log(f"SIGKILL workers {a.port} and {b.port}")
        a.kill()
        b.kill()
        await asyncio.sleep(RESTART_AFTER)
        a.start()
        b.start()

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    await conclude(
        "test_sigkill_both_workers_mid_stream",
        f"SIGKILL 2 of 2 workers, restart both after {RESTART_AFTER:g} s",
        scenario, [a, b], fault_at, produced_at,
    )


async def test_worker_with_wiped_data_dir_rebuilds_from_changelogs(clusters) -> None:
    cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=606)
    await scenario.produce_profiles()

    log_from = 0

    async def fault() -> None:
        nonlocal log_from
        log(f"SIGKILL worker {a.port}, wipe {a.data_dir}, restart it")
        a.kill()
        shutil.rmtree(a.data_dir)
        a.data_dir.mkdir()
        log_from = a.log_path.stat().st_size
        await asyncio.sleep(RESTART_AFTER)
        a.start()

    def rebuilt() -> dict:
        """Changelog records the restarted worker applied ('restored ... N records' lines)."""
        text = a.log_path.read_bytes()[log_from:].decode(errors="replace")
        counts = [int(n) for n in re.findall(r"restored \S+ offsets \S+: (\d+) records", text)]
        return {"rebuilt_records": sum(counts) if counts else None}

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    await conclude(
        "test_worker_with_wiped_data_dir_rebuilds_from_changelogs",
        f"SIGKILL 1 of 2 workers, wipe its data dir, restart after {RESTART_AFTER:g} s",
        scenario, [a, b], fault_at, produced_at, after=rebuilt,
    )


SESSION_TIMEOUT = 10  # SESSION_TIMEOUT_SECONDS of the zombie test's workers


async def test_a_worker_resumed_after_its_generation_expired_is_refused(clusters) -> None:
    """Frozen for three session timeouts, the worker is removed from the group and its
    partitions go to the other one; its open transaction is aborted by the coordinator. When
    it is resumed it still holds the state of its old generation and reads on from where it
    stopped: whatever it applies, its rounds are refused (its generation has expired, KIP-447)
    and dropped, then it rejoins as a new member. Nothing it did counts twice: every answer
    and dead letter is exact."""
    cluster = clusters(SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT))
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=808)
    await scenario.produce_profiles()
    pause = SESSION_TIMEOUT * 3
    log_from = 0

    async def fault() -> None:
        nonlocal log_from
        log(f"SIGSTOP worker {a.port} for {pause} s")
        a.signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(pause)
        finally:
            log_from = a.log_path.stat().st_size
            log(f"SIGCONT worker {a.port}")
            a.signal(signal.SIGCONT)

    def refusals() -> dict:
        """What the resumed worker logged: rounds fenced, and offsets the coordinator refused."""
        text = a.log_path.read_bytes()[log_from:].decode(errors="replace")
        return {
            "rounds_fenced_logged": len(re.findall(r"round of .* fenced", text)),
            "refused_by_coordinator": len(re.findall(r"refused for group", text)),
        }

    # Half the views before the freeze; the rest (about 13 s of them) while it is frozen.
    fault_at, produced_at = await scenario.stream_with_fault(RATE, 0.5, fault)
    entry = await conclude(
        "test_a_worker_resumed_after_its_generation_expired_is_refused",
        f"SIGSTOP 1 of 2 workers for {pause} s (session timeout {SESSION_TIMEOUT} s), SIGCONT",
        scenario, [a, b], fault_at, produced_at, after=refusals, stopped_s=pause,
        must_live=[b],
    )
    fenced = await metric([a], "property_analytics_commit_rounds_fenced_total")
    assert fenced >= 1, f"the resumed worker committed nothing that was refused: {entry}"
    assert entry["rounds_fenced_logged"] >= 1, entry
