"""Restarts without a rebalance (static membership, KIP-345): with ``GROUP_INSTANCE_ID=auto``
a worker stopped and started again within the session timeout takes its own partitions back
and the other worker's partitions never move: it sees no revocation (aiokafka's "Revoking
previously assigned partitions" line, a stage's "partition N closed") and holds the same
partitions throughout. The answers stay exact (the oracle)."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from faults._harness import Scenario, conclude, log

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE = 300
SESSION_TIMEOUT_S = 30  # room for a stop and a start on a busy machine
CLOSED = re.compile(r"[\w-]+: partition \d+ closed")


async def held(worker) -> dict[str, list[int]]:  # noqa: ANN001
    status, body = await worker.get("/ready")
    assert status == 200, body
    return body["partitions"]


@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic-control"])
async def test_a_static_member_restarted_within_the_session_timeout_moves_nobody_elses_partitions(
    clusters, static: bool
) -> None:
    """``dynamic-control``: the same restart without GROUP_INSTANCE_ID, where the other worker
    does see the rebalance: what this test checks is seen when it happens."""
    membership = {"GROUP_INSTANCE_ID": "auto"} if static else {}
    cluster = clusters(SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT_S), **membership)
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    await asyncio.sleep(3.0)  # the group settled: both hold partitions
    scenario = Scenario(cluster, seed=3450)
    await scenario.produce_profiles()
    before = {"a": await held(a), "b": await held(b)}
    assert before["a"]["views"] and before["b"]["views"], before
    b_log_from = b.log_path.stat().st_size
    restart: dict[str, float] = {}

    async def fault() -> None:
        started = time.monotonic()
        log(f"SIGTERM worker {a.port}, start it again at once")
        a.stop()
        a.start()
        await a.wait_ready(SESSION_TIMEOUT_S * 3)
        restart["seconds"] = round(time.monotonic() - started, 1)
        assert restart["seconds"] < SESSION_TIMEOUT_S, f"the restart took {restart['seconds']} s"

    fault_at, produced_at = await scenario.stream_with_fault(RATE, 0.5, fault)
    after = {"a": await held(a), "b": await held(b)}
    b_log = b.log_path.read_bytes()[b_log_from:].decode(errors="replace")
    revoked = [line for line in b_log.splitlines()
               if "Revoking previously assigned partitions" in line or CLOSED.search(line)]
    await conclude(
        "test_a_static_member_restarted_within_the_session_timeout_moves_nobody_elses_partitions",
        f"SIGTERM and restart 1 of 2 {'static' if static else 'dynamic'} workers "
        f"(session timeout {SESSION_TIMEOUT_S} s)",
        scenario, [a, b], fault_at, produced_at,
        restart_s=restart["seconds"], survivor_revocations=len(revoked),
    )
    if not static:
        assert revoked, "without static membership the other worker saw no rebalance"
        return
    assert after == before, f"partitions moved: {before} -> {after}"
    assert not revoked, "the other worker saw a rebalance:\n" + "\n".join(revoked[:10])
