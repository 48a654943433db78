"""Graceful shutdown: a worker stopped with SIGTERM mid-stream hands its partitions over with
everything committed, so after a restart (of it, then of the other one) next to nothing is
replayed (``property_analytics_events_replayed_total``: records received again at or below the
applied offset, i.e. behind what was committed) and every answer is exact. Records read twice
because a worker sought back over an offset gap are counted apart
(``property_analytics_events_reread_total``) and reported, not bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from faults._harness import Scenario, conclude, log

# In `make soak`: two more minutes, and `make test` already restarts workers (after SIGKILL).
pytestmark = [pytest.mark.faults, pytest.mark.soak, pytest.mark.timeout(900)]

RATE = 300
NEXT_TO_NOTHING = 0.005  # of the views: at most this share may be seen twice


async def test_sigterm_then_restart_replays_next_to_nothing(clusters) -> None:
    cluster = clusters()
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=707)
    await scenario.produce_profiles()
    stops: dict[str, object] = {}

    async def fault() -> None:
        for worker in (a, b):  # one after the other, the other one running meanwhile
            log(f"SIGTERM worker {worker.port}")
            started = time.monotonic()
            code = await asyncio.to_thread(worker.stop, 60)
            stops[f"exit_code_{worker.port}"] = code
            stops[f"stop_s_{worker.port}"] = round(time.monotonic() - started, 1)
            worker.start()
            await worker.wait_ready(180)

    fault_at, produced_at = await scenario.stream_with_fault(RATE, 0.6, fault)
    entry = await conclude(
        "test_sigterm_then_restart_replays_next_to_nothing",
        "SIGTERM + restart, each of 2 workers in turn",
        scenario, [a, b], fault_at, produced_at, **{k: v for k, v in stops.items()},
    )
    assert [code for key, code in stops.items() if key.startswith("exit_code")] == [0, 0], stops
    assert entry["replayed"] <= NEXT_TO_NOTHING * entry["views"], entry
