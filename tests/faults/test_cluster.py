"""The product on a production-shaped cluster: three brokers, replication factor 3,
``min.insync.replicas=2``, no unclean leader election, idempotent producers with acks=all.

Every topic the workers create gets three replicas and ``min.insync.replicas=2``, the
broker's own transaction state and group offsets topics too; two workers give every answer
exactly. The faults on this cluster (a broker lost, the controller lost, a rolling restart,
two brokers down) are the long tests of ``test_cluster_faults.py`` (``make soak``).
"""

from __future__ import annotations

import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.topics import MIN_INSYNC_REPLICAS, topic_configs
from faults._harness import Scenario, conclude

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

INTERNAL = ("__consumer_offsets", "__transaction_state")


async def test_product_is_exact_on_three_replicas_with_two_in_sync(healthy_cluster, clusters) -> None:
    kafka = healthy_cluster
    cluster = clusters(bootstrap=kafka.bootstrap, TOPIC_REPLICATION_FACTOR="3")
    a, b = cluster.add(), cluster.add()
    await cluster.ready()
    scenario = Scenario(cluster, seed=3303, views=4000)
    await scenario.produce_profiles()
    started = time.monotonic()
    await scenario.produce_views(0, None, rate=0)
    await conclude(
        "test_product_is_exact_on_three_replicas_with_two_in_sync",
        "none: 2 workers on 3 brokers, RF 3, min ISR 2",
        scenario, [a, b], started, time.monotonic(),
    )

    tag = cluster.group.rsplit("-", 1)[-1]
    described = {t["topic"]: t for t in await kafka.describe()}
    product = sorted(name for name in described if tag in name)
    assert len(product) >= 10, product  # inputs, outputs, DLQs, changelogs, repartition, partials
    for name in [*product, *INTERNAL]:
        replicas = {len(p["replicas"]) for p in described[name]["partitions"]}
        assert replicas == {3}, f"{name}: {replicas} replicas"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka.bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        configs = await topic_configs(admin, [*product, *INTERNAL])
    finally:
        await admin.close()
    wrong = {name: effective[MIN_INSYNC_REPLICAS] for name, (effective, own) in configs.items()
             if effective[MIN_INSYNC_REPLICAS] != "2"}
    assert not wrong, f"min.insync.replicas is not 2 on {wrong}"
    # The worker set it on its own topics (it does not rely on the broker's default).
    not_own = [name for name in product if configs[name][1].get(MIN_INSYNC_REPLICAS) != "2"
               and "__assignor" not in name]
    assert not not_own, f"created without their own min.insync.replicas: {not_own}"
