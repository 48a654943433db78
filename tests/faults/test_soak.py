"""Long fault tests (``-m soak``, i.e. ``make soak``): rebalance churn, and a zombie worker.

3. While views stream in, a third worker joins and leaves every few seconds for a minute
   (leaving alternately by SIGTERM and SIGKILL): a rebalance every few seconds.
4. A worker frozen with SIGSTOP past the session timeout loses its partitions; when it is
   thawed (SIGCONT) it is a zombie holding stale state and maybe a half-done batch. It must
   be fenced: it may not write anything that counts (checked first, on the survivors), and
   it rejoins as a normal member (checked last: it must still be running).
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from faults._harness import Scenario, conclude, log

pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.timeout(1200)]

CHURN_FOR = 60.0
CHURN_EVERY = 5.0
SESSION_TIMEOUT = 10  # SESSION_TIMEOUT_SECONDS given to the workers of the zombie test


async def test_rebalance_churn_while_producing(clusters) -> None:
    cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=303, views=14000)
    await scenario.produce_profiles()
    rounds = 0

    async def churn() -> None:
        nonlocal rounds
        until = time.monotonic() + CHURN_FOR
        while time.monotonic() < until:
            extra = cluster.add()
            log(f"churn {rounds}: worker {extra.port} joins")
            await asyncio.sleep(CHURN_EVERY)
            if rounds % 2:
                log(f"churn {rounds}: worker {extra.port} SIGKILLed")
                extra.kill()
            else:
                log(f"churn {rounds}: worker {extra.port} SIGTERMed")
                await asyncio.to_thread(extra.stop, 60)
            rounds += 1
            await asyncio.sleep(CHURN_EVERY)

    # ~70 s of views at 200/s; the churn starts 1 s in and lasts a minute.
    fault_at, produced_at = await scenario.stream_with_fault(200, 0.0, churn)
    await conclude(
        "test_rebalance_churn_while_producing",
        f"a 3rd worker joins and leaves every {CHURN_EVERY:g} s for {CHURN_FOR:g} s",
        scenario, [a, b], fault_at, produced_at, after=lambda: {"churn_rounds": rounds},
    )


async def test_sigstopped_worker_is_fenced_after_session_timeout(clusters) -> None:
    cluster = clusters(SESSION_TIMEOUT_SECONDS=str(SESSION_TIMEOUT))
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=404, views=12000)
    await scenario.produce_profiles()
    pause = SESSION_TIMEOUT * 3

    async def fault() -> None:
        log(f"SIGSTOP worker {a.port} for {pause} s")
        a.signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(pause)
        finally:
            log(f"SIGCONT worker {a.port}")
            a.signal(signal.SIGCONT)

    # ~60 s of views at 200/s; frozen 30 % in, thawed with ~10 s of views still to come.
    fault_at, produced_at = await scenario.stream_with_fault(200, 0.3, fault)
    await conclude(
        "test_sigstopped_worker_is_fenced_after_session_timeout",
        f"SIGSTOP 1 of 2 workers for {pause} s (session timeout {SESSION_TIMEOUT} s), SIGCONT",
        scenario, [a, b], fault_at, produced_at, stopped_s=pause, must_live=[b],
    )
