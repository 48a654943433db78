"""A worker SIGKILLed with a transaction open: its partitions' new owner fences that
transaction once it is past its timeout (app.engine.takeover) instead of waiting for the
transaction coordinator's clean-up, and every answer stays exact.

The fault is aimed: the worker is frozen (SIGSTOP) for a look at its views transaction
(DescribeTransactions, then OffsetFetch with require_stable); when one is open and holds a
partition's offset, it is killed (SIGKILL) or left frozen, otherwise it resumes and the next
look follows. So a transaction holds an offset at every fault, and the survivor can only open
that partition once the transaction has ended.

Frozen instead of killed, the worker is a zombie: fenced while it sleeps, then resumed, it
finds its round refused, drops it and rejoins; that costs it the round, never a count.

The broker is one of the tests' own, whose transaction coordinator looks for timed-out
transactions only every 10 minutes (``CLEANUP_MS``; Kafka's default is 10 s): without the fence
the partitions would stay closed for minutes, so the fence is the only way they can open within
the test's waits, whatever the timing.
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections.abc import Iterator

import pytest
from aiokafka.client import AIOKafkaClient, ConnectionGroup, CoordinationType

from app.engine.identity import transactional_id, worker_id
from app.engine.kip447.outcomes import UNSTABLE_OFFSET_COMMIT
from app.engine.kip447.protocol import DescribeTransactions, StableOffsetFetch
from faults._harness import ARTIFACTS, Cluster, Scenario, conclude, log, metric, own_broker
from tests.support.broker import Broker
from tests.support.workers import Worker

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

RATE = 300  # views/s: transactions every round, the lag before the fault ~0
AT = 0.6
PARTITIONS = 6
FENCED = "property_analytics_takeover_transactions_fenced_total"
CLEANUP_MS = 600_000  # the test broker's transaction.abort.timed.out.transaction.cleanup.interval.ms


@pytest.fixture
def slow_cleanup_broker(request: pytest.FixtureRequest, monkeypatch) -> Iterator[Broker]:  # noqa: ANN001
    """A broker of this test's own that aborts timed-out transactions only every
    ``CLEANUP_MS``. Request it before ``clusters``, so that the workers stop first."""
    props = ARTIFACTS / "kafka-slow-transaction-cleanup.properties"
    props.parent.mkdir(parents=True, exist_ok=True)
    props.write_text(f"transaction.abort.timed.out.transaction.cleanup.interval.ms={CLEANUP_MS}\n")
    monkeypatch.setenv("KAFKA_EXTRA_PROPS", str(props))
    with own_broker(request, f"broker with a {CLEANUP_MS // 1000} s transaction clean-up") as broker:
        yield broker


async def _holds_an_offset(client: AIOKafkaClient, cluster: Cluster, txn_id: str) -> bool:
    """Whether ``txn_id`` has a transaction open that holds the group's offset of a views
    partition (its TxnOffsetCommit sent: the offset is answered UNSTABLE_OFFSET_COMMIT), not
    only one that has begun. Asked while the worker is frozen, so that it cannot move on."""
    node = await client.coordinator_lookup(CoordinationType.TRANSACTION, txn_id)
    answer = await client.send(node, DescribeTransactions([txn_id]), group=ConnectionGroup.COORDINATION)
    [(code, _id, state, _timeout, _started, _producer, _epoch, topics, _)] = answer.transaction_states
    changelog = f"{cluster.group}-views-state-changelog"
    mine = [p for topic, parts, _ in topics if topic == changelog for p in parts]
    if code != 0 or state != "Ongoing" or not mine:
        return False
    node = await client.coordinator_lookup(CoordinationType.GROUP, cluster.group)
    views = cluster.topic("views")
    answer = await client.send(node, StableOffsetFetch(cluster.group, [(views, sorted(mine))]),
                               group=ConnectionGroup.COORDINATION)
    # The frozen worker owns these partitions in this generation: no other member's
    # transaction can hold their offsets.
    return any(code == UNSTABLE_OFFSET_COMMIT
               for _t, parts, _ in answer.topics for _p, _o, _e, _m, code, _ in parts)


async def freeze_with_a_transaction_open(worker: Worker, txn_id: str, cluster: Cluster) -> float:
    """SIGSTOP ``worker`` while a transaction of ``txn_id`` holds a views offset; the
    monotonic freeze time."""
    client = AIOKafkaClient(bootstrap_servers=cluster.bootstrap)
    await client.bootstrap()
    try:
        async with asyncio.timeout(180):
            while True:
                worker.signal(signal.SIGSTOP)
                if await _holds_an_offset(client, cluster, txn_id):
                    return time.monotonic()
                worker.signal(signal.SIGCONT)
                await asyncio.sleep(0.05)
    finally:
        await client.close()


async def logged_after(worker: Worker, mark: int, text: str, timeout: float = 120) -> float:
    """The monotonic time at which ``worker``'s log, after byte ``mark``, holds ``text``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(worker.log_path, "rb") as f:
            f.seek(mark)
            if text in f.read().decode(errors="replace"):
                return time.monotonic()
        await asyncio.sleep(0.1)
    raise AssertionError(f"worker {worker.port} did not log {text!r} in {timeout}s")


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


async def test_sigkill_with_a_transaction_open_is_fenced_by_the_survivor(
    slow_cleanup_broker, clusters
) -> None:
    cluster = clusters(slow_cleanup_broker.bootstrap, TOPIC_PARTITIONS=str(PARTITIONS))
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=404)
    await scenario.produce_profiles()
    dead_id = transactional_id(cluster.group, "views", worker_id(a.data_dir))
    timings: dict[str, float] = {}

    async def fault() -> None:
        mark = b.log_path.stat().st_size
        killed_at = await freeze_with_a_transaction_open(a, dead_id, cluster)
        a.kill()
        log(f"SIGKILL worker {a.port} with {dead_id}'s transaction open")
        timings["views_open_s"] = round(await all_open_after(b, mark) - killed_at, 1)

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    await conclude(
        "test_sigkill_with_a_transaction_open_is_fenced_by_the_survivor",
        "SIGKILL 1 of 2 workers with its views transaction open, no restart",
        scenario, [b], fault_at, produced_at, **timings,
    )
    # The survivor ended the dead worker's transaction itself: the coordinator's clean-up
    # would have come minutes later.
    assert timings["views_open_s"] < CLEANUP_MS / 1000 / 4, timings
    assert await metric([b], FENCED) >= 1
    text = b.log_path.read_text(errors="replace")
    assert f"fenced transactional id {dead_id}" in text, cluster.log_tails(40)


async def test_a_zombie_fenced_while_frozen_loses_only_its_round(
    slow_cleanup_broker, clusters
) -> None:
    cluster = clusters(slow_cleanup_broker.bootstrap, TOPIC_PARTITIONS=str(PARTITIONS))
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=505)
    await scenario.produce_profiles()
    zombie_id = transactional_id(cluster.group, "views", worker_id(a.data_dir))
    timings: dict[str, float] = {}

    async def fault() -> None:
        mark = b.log_path.stat().st_size
        frozen_at = await freeze_with_a_transaction_open(a, zombie_id, cluster)
        log(f"SIGSTOP worker {a.port} with {zombie_id}'s transaction open")
        try:
            fenced_at = await logged_after(b, mark, f"fenced transactional id {zombie_id}")
            timings["fenced_s"] = round(fenced_at - frozen_at, 1)
            timings["views_open_s"] = round(await all_open_after(b, mark) - frozen_at, 1)
        finally:
            log(f"SIGCONT worker {a.port}")
            a.signal(signal.SIGCONT)

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    await conclude(
        "test_a_zombie_fenced_while_frozen_loses_only_its_round",
        "SIGSTOP 1 of 2 workers with its views transaction open until the survivor fenced it, "
        "SIGCONT",
        scenario, [a, b], fault_at, produced_at, must_live=[b], **timings,
    )
    assert await metric([b], FENCED) >= 1
    # The resumed worker's round was refused (its producer fenced, or its generation gone),
    # dropped, and read again by the partitions' owners: the answers above are exact.
    assert await metric([a], "property_analytics_commit_rounds_fenced_total") >= 1
