"""Fault 5: the broker restarts under running workers, cleanly (SIGTERM) and then after a
SIGKILL. The workers must recover by themselves (no restart, no operator) and every answer
must still be exact.

Runs on a broker of its own (tools/kafka/kafka.sh on other ports), never the shared one.
The views are produced in three parts, before, between and after the two restarts (the test's
producer is not under test, so it never sends while the broker is down); each restart comes
right after a part was produced, while the workers are still working through it.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from faults._harness import Scenario, conclude, log, report, seconds, wait_lag_zero

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]


async def test_broker_restart_clean_then_sigkill(dedicated_broker, clusters) -> None:
    broker = dedicated_broker
    cluster = clusters(bootstrap=broker.bootstrap)
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=505)
    await scenario.produce_profiles()
    third = len(scenario.view_records) // 3

    # 1. A backlog, then a clean broker restart while the workers process it.
    await scenario.produce_views(0, third, rate=0)
    fault_at = time.monotonic()
    down = await asyncio.to_thread(broker.stop)
    up = await asyncio.to_thread(broker.start)
    log(f"broker stopped in {down:.1f}s, started in {up:.1f}s")
    zero_at = await wait_lag_zero(cluster, must_live=[a, b])
    report(
        "test_broker_restart_clean_then_sigkill",
        "broker clean restart (SIGTERM) under 2 workers",
        recover_s=seconds(fault_at, zero_at),
        broker_down_s=round(down + up, 1),
        broker=broker.bootstrap,
    )

    # 2. Another backlog, then the broker is SIGKILLed and started again; the rest of the
    #    views arrive while the workers recover.
    await scenario.produce_views(third, 2 * third, rate=0)
    fault_at = time.monotonic()
    broker.kill()
    up = await asyncio.to_thread(broker.start)
    log(f"broker SIGKILLed, started again in {up:.1f}s")
    await scenario.produce_views(2 * third, None, rate=0)
    await conclude(
        "test_broker_restart_clean_then_sigkill",
        "broker SIGKILL + restart under 2 workers",
        scenario, [a, b], fault_at, time.monotonic(), broker_down_s=round(up, 1),
    )
