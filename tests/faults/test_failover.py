"""Failover, measured: three workers under a live stream; one SIGKILLed (time-to-serve of
the partitions it held, what the survivors restored), started again (a rejoin), then a
rolling restart of all three. Meanwhile clients poll sampled property hours on every worker
whose HTTP server is up, with a ``timeout`` that covers the session timeout and a restore:
no answer may be 5xx and none may go backwards (an earlier offset of its partition, or fewer
views). After the group has caught up, every answer equals the oracle's.

The figures go to tests/artifacts/faults-report.json (``FAULT REPORT`` line); the bench's
``python -m bench.failover`` measures the same at a larger size.
"""

from __future__ import annotations

import asyncio

import pytest

from bench.moves import Group, Poller, changelog_bytes, restore_summary, rejoin, rolling_restart, sample_lanes, sigkill
from app.engine.transactions import TRANSACTION_TIMEOUT_MS
from bench.moves import Restore
from faults._harness import Scenario, conclude, log

pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.timeout(1200)]

RATE = 400  # views/s: live all through the faults
AT = 0.3  # the faults start 30 % into the stream
SESSION_TIMEOUT_S = 10.0  # the product's default
POLL_TIMEOUT_S = 25.0  # the clients' ?timeout=: above the session timeout plus a restore


async def test_sigkill_rejoin_and_rolling_restart_of_three_workers(clusters) -> None:
    cluster = clusters()
    workers = [cluster.add(), cluster.add(), cluster.add()]
    await cluster.ready()
    scenario = Scenario(cluster, seed=2601, views=30000, users=5000, properties=600, hours=20)
    await scenario.produce_profiles()
    partitions = int(cluster.env["TOPIC_PARTITIONS"])
    group = Group(workers, lambda w: w.log_path.read_text(errors="replace"), {w.url for w in workers})
    lanes = sample_lanes(scenario.view_records[-6000:], partitions, per_partition=4)
    assert sorted(lanes) == list(range(partitions)), "a partition without sampled views"
    poller = Poller(lanes, group.targets, cluster.env["VIEWS_TOPIC"], timeout_s=POLL_TIMEOUT_S)
    stop = asyncio.Event()
    polling = asyncio.create_task(poller.run(stop))
    moves: dict = {}

    async def faults() -> None:
        victim = workers[0]
        log(f"SIGKILL worker {victim.port}")
        moves["sigkill"] = await sigkill(group, victim, poller)
        log(f"served again {moves['sigkill']['time_to_serve_s']} s after the kill; restart it")
        moves["rejoin"] = await rejoin(group, victim)
        log("rolling restart of all three")
        moves["rolling"] = await rolling_restart(group)

    try:
        fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, faults)
        await asyncio.sleep(2.0)  # the clients go on over the end of the stream
    finally:
        stop.set()
        await polling
    kill = moves["sigkill"]
    client_kwargs = {"bootstrap_servers": cluster.bootstrap}

    async def restored(entries: list[dict]) -> dict:
        found = [Restore(**r) for r in entries]
        return restore_summary(found, await changelog_bytes(client_kwargs, found))

    figures = {
        "time_to_serve_s": kill["time_to_serve_s"],
        "sigkill_open_s": kill["open_s"],
        "sigkill_answer_s": kill["answer_s"],
        "session_timeout_s": SESSION_TIMEOUT_S,
        "sigkill_restored": await restored(kill["restored"]),
        "rejoin_settled_s": moves["rejoin"]["settled_s"],
        "rejoin_restored": await restored(moves["rejoin"]["restored"]),
        "rolling_s": moves["rolling"]["seconds"],
        "rolling_restored": await restored(moves["rolling"]["restored"]),
        "clients": poller.summary(),
        "clients_during_sigkill": poller.summary(kill["killed_at"], moves["rejoin"]["started_at"]),
        "clients_during_rejoin": poller.summary(moves["rejoin"]["started_at"], moves["rolling"]["started_at"]),
        "clients_during_rolling": poller.summary(moves["rolling"]["started_at"]),
    }
    await conclude(
        "test_sigkill_rejoin_and_rolling_restart_of_three_workers",
        "SIGKILL 1 of 3 workers, restart it, then a rolling restart of all 3",
        scenario, workers, fault_at, produced_at, **figures,
    )
    clients = figures["clients"]
    assert clients["requests"] > 1000 and clients["by_status"].get("200", 0) > 1000, clients
    assert clients["five_xx"] == 0, clients
    assert clients["backwards"] == 0, clients
    assert set(kill["held"]["views"]), "the killed worker held no views partition"
    assert figures["sigkill_restored"]["records"] > 0, "the survivors restored nothing"
    # Without standby replicas the group notices a SIGKILL only at the session timeout, and the
    # new owners restore only once the dead worker's open transactions are aborted (by the
    # transaction timeout): the bound is the two, plus 5 s for the rebalance and the restore.
    bound = SESSION_TIMEOUT_S + TRANSACTION_TIMEOUT_MS / 1000 + 5
    assert kill["time_to_serve_s"] < bound, kill
