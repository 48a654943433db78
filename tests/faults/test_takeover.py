"""A worker SIGKILLed with a transaction open: its partitions' new owner fences that
transaction once it is past its timeout (app.engine.takeover) instead of waiting for the
transaction coordinator's clean-up, and every answer stays exact.

The kill is aimed: the killed worker's views transaction is watched (DescribeTransactions)
until one is open, the worker is frozen (SIGSTOP) and, if the transaction is still open, killed
(SIGKILL); otherwise it resumes and the watch goes on. So a transaction is open at every kill,
and the survivor can only open the partitions by that transaction ending.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time

import pytest
from aiokafka.client import AIOKafkaClient, ConnectionGroup, CoordinationType

from app.engine.identity import transactional_id, worker_id
from app.engine.kip447.protocol import DescribeTransactions
from faults._harness import Scenario, conclude, log, metric
from tests.support.workers import Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE = 300  # views/s: transactions every round, the lag before the fault ~0
AT = 0.6
PARTITIONS = 6
FENCED = "property_analytics_takeover_transactions_fenced_total"


async def _ongoing(client: AIOKafkaClient, txn_id: str) -> tuple[int, int] | None:
    """(producer epoch, start time) of ``txn_id``'s open transaction, or None."""
    node = await client.coordinator_lookup(CoordinationType.TRANSACTION, txn_id)
    answer = await client.send(node, DescribeTransactions([txn_id]), group=ConnectionGroup.COORDINATION)
    [(code, _id, state, _timeout, started, _producer, epoch, topics, _tags)] = answer.transaction_states
    return (epoch, started) if code == 0 and state == "Ongoing" and topics else None


async def kill_with_a_transaction_open(worker: Worker, txn_id: str, bootstrap: str) -> float:
    """SIGKILL ``worker`` while ``txn_id`` has a transaction open; the monotonic kill time."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        async with asyncio.timeout(120):
            while True:
                if await _ongoing(client, txn_id) is not None:
                    worker.signal(signal.SIGSTOP)
                    if await _ongoing(client, txn_id) is not None:
                        worker.kill()
                        return time.monotonic()
                    worker.signal(signal.SIGCONT)
                await asyncio.sleep(0.01)
    finally:
        await client.close()


async def all_open_after(worker: Worker, mark: int, timeout: float = 120) -> float:
    """The monotonic time at which ``worker``'s log, after byte ``mark``, says every views
    partition is open."""
    pattern = re.compile(r"views: partition (\d+) open")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(worker.log_path, "rb") as f:
            f.seek(mark)
            opened = {int(p) for p in pattern.findall(f.read().decode(errors="replace"))}
        if opened >= set(range(PARTITIONS)):
            return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError(f"worker {worker.port} did not open every views partition in {timeout}s")


async def test_sigkill_with_a_transaction_open_is_fenced_by_the_survivor(clusters) -> None:
    cluster = clusters(TOPIC_PARTITIONS=str(PARTITIONS))
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=404)
    await scenario.produce_profiles()
    dead_id = transactional_id(cluster.group, "views", worker_id(a.data_dir))
    timings: dict[str, float] = {}

    async def fault() -> None:
        mark = b.log_path.stat().st_size
        killed_at = await kill_with_a_transaction_open(a, dead_id, cluster.bootstrap)
        log(f"SIGKILL worker {a.port} with {dead_id}'s transaction open")
        timings["views_open_s"] = round(await all_open_after(b, mark) - killed_at, 1)

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    await conclude(
        "test_sigkill_with_a_transaction_open_is_fenced_by_the_survivor",
        "SIGKILL 1 of 2 workers with its views transaction open, no restart",
        scenario, [b], fault_at, produced_at, **timings,
    )
    # The survivor ended the dead worker's transaction itself: nothing else could have ended
    # it before the coordinator's clean-up, which never fences a producer by InitProducerId.
    assert await metric([b], FENCED) >= 1
    text = b.log_path.read_text(errors="replace")
    assert f"fenced transactional id {dead_id}" in text, cluster.log_tails(40)
