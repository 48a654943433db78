"""Fault tests: real workers (subprocesses) against a real broker, faults injected mid-stream.

Every test here needs the broker (skip on a laptop without one, fail under CI, as in
tests/integration). Tests marked ``soak`` run only when asked for (``-m soak``, i.e.
``make soak``); plain ``make test`` deselects them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from faults._harness import ARTIFACTS, Cluster, log, own_broker
from tests.support.broker import Broker
from tests.support.cluster import NODES, KafkaCluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long fault tests, run only with -m soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.option.markexpr or ""):
        return
    soak = [item for item in items if item.get_closest_marker("soak")]
    if soak:
        config.hook.pytest_deselected(items=soak)
        items[:] = [item for item in items if not item.get_closest_marker("soak")]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):  # noqa: ANN201
    report = yield
    setattr(item, f"_faults_{report.when}", report)
    return report


@pytest.fixture(autouse=True)
def _require_kafka(kafka_bootstrap: str) -> str:
    return kafka_bootstrap


@pytest_asyncio.fixture(loop_scope="session")
async def clusters(request: pytest.FixtureRequest, kafka_bootstrap: str) -> AsyncIterator:
    """``clusters(bootstrap=None, **env)`` -> a Cluster; every worker is stopped afterwards, and
    on success the test's topics and data dirs are removed (kept for post-mortems on failure)."""
    made: list[Cluster] = []

    def make(bootstrap: str | None = None, **overrides: str) -> Cluster:
        cluster = Cluster(bootstrap or kafka_bootstrap, **overrides)
        made.append(cluster)
        log(f"cluster {cluster.group} on {cluster.bootstrap}")
        return cluster

    yield make
    passed = getattr(request.node, "_faults_call", None) is not None and request.node._faults_call.passed
    for cluster in made:
        cluster.shutdown()
    if passed:
        for cluster in made:
            cluster.remove_data()
            try:
                await cluster.delete_topics()
            except Exception as exc:  # noqa: BLE001 - cleanup only (the broker may be gone)
                log(f"could not delete the topics of {cluster.group}: {exc!r}")


@pytest.fixture
def dedicated_broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """A broker of this test's own, to restart and kill. Request it before ``clusters``, so
    that the workers are stopped before their broker goes."""
    with own_broker(request) as broker:
        yield broker


@pytest.fixture(scope="module")
def kafka_cluster(request: pytest.FixtureRequest) -> Iterator[KafkaCluster]:
    """A three-node cluster of this test module's own (tools/kafka/cluster.sh on other ports),
    shared by its tests; removed afterwards (the nodes' logs kept under tests/artifacts/logs/
    when a test failed). Request it before ``clusters``, so that the workers stop first."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    cluster = KafkaCluster(ARTIFACTS / f"kafka-cluster-{name}")
    shutil.rmtree(cluster.home, ignore_errors=True)
    failed_before = request.session.testsfailed
    log(f"starting a three-node cluster on {cluster.bootstrap} ({cluster.home})")
    took = cluster.up()
    log(f"three-node cluster ready in {took:.1f}s (cold start)")
    yield cluster
    if request.session.testsfailed > failed_before:
        for node in NODES:
            keep = ARTIFACTS / "logs" / f"{cluster.home.name}-node{node}-server.log"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(cluster.log_tail(node, 5000))
    cluster.destroy()


@pytest_asyncio.fixture(loop_scope="session")
async def healthy_cluster(kafka_cluster: KafkaCluster) -> KafkaCluster:
    """The module's cluster with all three nodes running and every replica in sync (a test
    before may have left a node down)."""
    for node in NODES:
        if not kafka_cluster.alive(node):
            log(f"node {node} is down: starting it")
            await asyncio.to_thread(kafka_cluster.start, node)
    await kafka_cluster.wait_in_sync()
    return kafka_cluster
