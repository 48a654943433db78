"""Brokers lost under running workers, on a production-shaped cluster (three nodes, each broker
and controller; replication factor 3, ``min.insync.replicas=2``, no unclean leader election).

Each test streams a seeded workload into two workers and injects its fault mid-stream while
the views keep coming; afterwards every hourly and weekly answer, the insight ids and the
dead letters must equal what one uninterrupted run gives (the oracle), no input may be lost
and no insight published twice. The numbers (time to recover, records replayed) go to
tests/artifacts/faults-report.json.

- the broker leading the most ``property.views`` partitions is SIGKILLed, then started again;
- the active controller is SIGKILLed, then started again;
- a rolling restart: each node stopped cleanly and started again in turn, the next one only
  once every replica is back in sync;
- two brokers down (below ``min.insync.replicas``, and below the controller quorum): the
  producer and the workers' transactions stall and say so (log, ``/ready``, a metric), and
  resume exactly once a broker returns.

Long (three to five minutes each on two busy cores): ``make soak`` runs them.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from faults._harness import Scenario, conclude, log, seconds, wait_lag_zero
from tests.support.cluster import NODES, KafkaCluster
from tests.support.workers import Worker

pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.timeout(1200)]

RATE = 200  # views/s, well under what two workers sustain on this machine beside 3 brokers
ROLLING_RATE = 80  # views/s of the rolling restart test
AT = 0.3  # the fault comes 30 % into the stream: most views arrive during and after it
DOWN_FOR = 12.0  # seconds a killed broker stays down (past the broker session timeout, 9 s)
STALL_ALERT = 5.0  # COMMIT_STALL_ALERT_SECONDS of the workers in the two-down test


def workers_env(kafka: KafkaCluster, **extra: str) -> dict[str, str]:
    return {"bootstrap": kafka.bootstrap, "TOPIC_REPLICATION_FACTOR": "3", **extra}


async def start(clusters, kafka: KafkaCluster, seed: int, views: int = 8000, **extra: str):  # noqa: ANN001, ANN201
    env = workers_env(kafka, **extra)
    cluster = clusters(**env)
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=seed, views=views)
    await scenario.produce_profiles()
    return cluster, scenario, a, b


async def restart_later(kafka: KafkaCluster, node: int, killed: float, numbers: dict) -> None:
    await asyncio.sleep(DOWN_FOR)
    numbers["broker_start_s"] = round(await asyncio.to_thread(kafka.start, node), 1)
    numbers["broker_down_s"] = seconds(killed, time.monotonic())
    numbers["isr_refill_s"] = round(await kafka.wait_in_sync(), 1)


async def kill_mid_stream(scenario: Scenario, kafka: KafkaCluster, pick, numbers: dict):  # noqa: ANN001, ANN201
    """SIGKILL node ``await pick()`` mid-stream, start it again DOWN_FOR seconds later, and
    wait meanwhile for the group to take in every view (``caught_up_s``: the product's own
    recovery, with or without that broker); then for the broker and every replica to be back.
    Returns the monotonic times of the kill and of the end of production."""
    restart: list[asyncio.Task] = []

    async def fault() -> None:
        node = await pick()
        killed = time.monotonic()
        kafka.kill(node)
        restart.append(asyncio.create_task(restart_later(kafka, node, killed, numbers)))

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)
    caught_up = await wait_lag_zero(scenario.cluster, must_live=scenario.cluster.alive)
    numbers["caught_up_s"] = seconds(fault_at, caught_up)
    numbers["caught_up_with_broker_down"] = not restart[0].done()
    await restart[0]
    return fault_at, produced_at


async def test_sigkill_the_broker_leading_most_views_partitions(healthy_cluster, clusters) -> None:
    kafka = healthy_cluster
    cluster, scenario, a, b = await start(clusters, kafka, seed=7101)
    numbers: dict = {}

    async def pick() -> int:
        views = cluster.topic("views")
        leaders = await kafka.leaders(views)
        node = await kafka.top_leader(views)
        numbers["node"] = node
        numbers["led_partitions"] = sum(1 for n in leaders.values() if n == node)
        log(f"SIGKILL node {node}, leader of {numbers['led_partitions']}/{len(leaders)} "
            f"partitions of {views}")
        return node

    fault_at, produced_at = await kill_mid_stream(scenario, kafka, pick, numbers)
    await conclude(
        "test_sigkill_the_broker_leading_most_views_partitions",
        "SIGKILL the broker leading most property.views partitions, restart after "
        f"{DOWN_FOR:g} s (3 brokers, 2 workers)",
        scenario, [a, b], fault_at, produced_at, **numbers,
    )


async def test_sigkill_the_active_controller(healthy_cluster, clusters) -> None:
    kafka = healthy_cluster
    cluster, scenario, a, b = await start(clusters, kafka, seed=7202)
    numbers: dict = {}

    async def pick() -> int:
        node = kafka.active_controller()
        leaders = await kafka.leaders(cluster.topic("views"))
        numbers["node"] = node
        numbers["led_partitions"] = sum(1 for n in leaders.values() if n == node)
        log(f"SIGKILL node {node}, the active controller")
        return node

    fault_at, produced_at = await kill_mid_stream(scenario, kafka, pick, numbers)
    numbers["new_controller"] = kafka.active_controller()
    await conclude(
        "test_sigkill_the_active_controller",
        f"SIGKILL the active controller, restart after {DOWN_FOR:g} s (3 brokers, 2 workers)",
        scenario, [a, b], fault_at, produced_at, **numbers,
    )


async def test_rolling_restart_under_load(healthy_cluster, clusters) -> None:
    kafka = healthy_cluster
    # 150 s of views at ROLLING_RATE: the restart of the three nodes (100-170 s on two busy
    # cores) falls inside the stream, or nearly.
    cluster, scenario, a, b = await start(clusters, kafka, seed=7303, views=12000)
    numbers: dict = {"steps": []}

    async def fault() -> None:
        for node in NODES:
            t0 = time.monotonic()
            stopped = await asyncio.to_thread(kafka.stop, node)
            started = await asyncio.to_thread(kafka.start, node)
            refill = await kafka.wait_in_sync()
            step = {"node": node, "stop_s": round(stopped, 1), "start_s": round(started, 1),
                    "isr_refill_s": round(refill, 1), "total_s": seconds(t0, time.monotonic())}
            log(f"rolling restart: {step}")
            numbers["steps"].append(step)

    fault_at, produced_at = await scenario.stream_with_fault(ROLLING_RATE, 0.05, fault)
    numbers["restart_s"] = seconds(fault_at, time.monotonic())
    await conclude(
        "test_rolling_restart_under_load",
        "rolling restart of 3 brokers (clean stop, start, ISR refill, next) under load",
        scenario, [a, b], fault_at, produced_at, **numbers,
    )


async def stalled(worker: Worker) -> dict | None:
    """The stall a worker reports on /ready (None while it reports none)."""
    status, body = await worker.get("/ready")
    if status == 503 and isinstance(body, dict):
        return body.get("stalled")
    return None


async def metric_value(worker: Worker, name: str) -> float | None:
    status, body = await worker.get("/metrics")
    for line in str(body).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_two_brokers_down_stall_and_resume_exactly(healthy_cluster, clusters) -> None:
    kafka = healthy_cluster
    cluster, scenario, a, b = await start(
        clusters, kafka, seed=7404, COMMIT_STALL_ALERT_SECONDS=str(STALL_ALERT))
    numbers: dict = {}
    survivor = kafka.active_controller()
    down = [n for n in NODES if n != survivor]
    logs_from = {w.port: w.log_path.stat().st_size for w in (a, b)}

    async def fault() -> None:
        killed = time.monotonic()
        log(f"SIGKILL nodes {down}: one broker of three left, below min.insync.replicas=2")
        for node in down:
            kafka.kill(node)
        # Both workers must say that they stall: /ready 503 with the cause, and the metric.
        seen: dict[int, dict] = {}
        deadline = time.monotonic() + 60
        while len(seen) < 2 and time.monotonic() < deadline:
            for worker in (a, b):
                if worker.port not in seen and (stall := await stalled(worker)):
                    seen[worker.port] = stall
                    numbers.setdefault("stall_reported_s", {})[worker.port] = seconds(
                        killed, time.monotonic())
                    log(f"worker {worker.port} reports a stall: {stall}")
            await asyncio.sleep(0.5)
        assert len(seen) == 2, f"only {sorted(seen)} reported a stall within 60 s"
        numbers["stall_cause"] = sorted({s["cause"] for s in seen.values()})
        for worker in (a, b):
            assert await metric_value(worker, "property_analytics_commits_stalled") == 1.0
            assert await metric_value(worker, "property_analytics_ready") == 0.0
        # One broker back: two of three replicas, and the controller quorum, again.
        numbers["broker_start_s"] = round(await asyncio.to_thread(kafka.start, down[0]), 1)
        back_at = time.monotonic()
        numbers["outage_s"] = seconds(killed, back_at)  # until the first node answers again
        await cluster.ready(a, b, timeout=240)
        numbers["resumed_after_broker_back_s"] = seconds(back_at, time.monotonic())
        log(f"both workers ready again {numbers['resumed_after_broker_back_s']} s after node "
            f"{down[0]} answered")
        numbers["third_broker_start_s"] = round(await asyncio.to_thread(kafka.start, down[1]), 1)
        numbers["isr_refill_s"] = round(await kafka.wait_in_sync(), 1)

    fault_at, produced_at = await scenario.stream_with_fault(RATE, AT, fault)

    def said_so() -> dict:
        lines = {}
        for worker in (a, b):
            text = worker.log_path.read_bytes()[logs_from[worker.port]:].decode(errors="replace")
            lines[worker.port] = (text.count("commits stalled:"), text.count("commits resumed:"))
        return {"log_lines_stalled_resumed": lines}

    entry = await conclude(
        "test_two_brokers_down_stall_and_resume_exactly",
        "SIGKILL 2 of 3 brokers (below min.insync.replicas and the controller quorum) mid-stream, "
        "one back after the stall is reported, then the third",
        scenario, [a, b], fault_at, produced_at, after=said_so, **numbers,
    )
    for port, (stalled_lines, resumed_lines) in entry["log_lines_stalled_resumed"].items():
        assert stalled_lines >= 1 and resumed_lines >= 1, f"worker {port} did not log its stall"
