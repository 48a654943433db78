"""Everything under tests/web needs the real broker (skip on a laptop without one, fail in CI),
and most tests share one pair of workers fed with the seeded workload."""

from __future__ import annotations


import pytest
import pytest_asyncio

from tests.web._cluster import start_cluster


@pytest.fixture(autouse=True)
def _require_kafka(kafka_bootstrap):
    return kafka_bootstrap


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(kafka_bootstrap, tmp_path_factory):
    """Two workers of one group, ready and fed; stopped after the module."""
    pair = start_cluster(kafka_bootstrap, tmp_path_factory.mktemp("web"), 2)
    try:
        for worker in pair.workers:
            await worker.wait_ready(120)
        await pair.settled()
        await pair.feed()
        await pair.settled()
        yield pair
    finally:
        pair.stop()
