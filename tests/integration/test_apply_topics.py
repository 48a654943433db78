"""``apply-topics --replication-factor 1`` of an export from a three-broker cluster (RF 3,
``min.insync.replicas=2``) onto the single real broker: the topics it creates take acks=all
writes, and say min.insync.replicas=1. Before, they kept min.insync.replicas=2 with one
replica: a broker that enforces the setting as written acknowledges no acks=all write there
(Kafka 4.4 itself caps it at the replicas it has, measured below on a topic made so by hand)."""

from __future__ import annotations

import json

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.topics import topic_configs
from tests.support.commands import run
from tests.support.workers import isolated_env

pytestmark = pytest.mark.timeout(300)


async def _produce_acks_all(bootstrap: str, topic: str, timeout_ms: int = 30_000) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
        request_timeout_ms=timeout_ms,
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"v", key=b"k")
    finally:
        await producer.stop()


async def test_min_insync_is_lowered_to_the_replication_factor_applied(kafka_bootstrap, tmp_path, unique_name):
    env = isolated_env(kafka_bootstrap)
    views, dlq, control = unique_name("views"), unique_name("views-dlq"), unique_name("control")
    export = {
        "format": 1,
        "appId": env["APP_ID"],
        "topics": [
            {"name": views, "partitions": 3, "replicationFactor": 3,
             "configs": {"min.insync.replicas": "2", "retention.ms": "1209600000"}},
            {"name": dlq, "partitions": 3, "replicationFactor": 3,
             "configs": {"min.insync.replicas": "2", "max.message.bytes": "1114112"}},
        ],
    }
    document = tmp_path / "topics.json"
    document.write_text(json.dumps(export))
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        applied = run(env, "apply-topics", str(document), "--replication-factor", "1")
        assert applied.returncode == 0, applied.stdout + applied.stderr[-2000:]
        for topic in (views, dlq):
            assert (
                f"warning: {topic}: min.insync.replicas=2 lowered to 1, the replication factor "
                "it is applied with: no more replicas than that can ever be in sync"
            ) in applied.stderr
            assert f"created  {topic}: 3 partitions, replication 1" in applied.stdout
        effective = await topic_configs(admin, [views, dlq])
        assert effective[views][0]["min.insync.replicas"] == "1"
        assert effective[views][0]["retention.ms"] == "1209600000"
        assert effective[dlq][0]["max.message.bytes"] == "1114112"

        for topic in (views, dlq):
            await _produce_acks_all(kafka_bootstrap, topic)  # acknowledged

        checked = run(env, "apply-topics", str(document), "--replication-factor", "1", "--check")
        assert checked.returncode == 0 and checked.stdout.count("ok ") == 2, checked.stdout

        # What apply-topics made before: one replica, min.insync.replicas=2. Kafka 4.4 takes
        # the smaller of the two at write time (the partition's "effective min ISR"), so this
        # broker still acknowledges; brokers without that rule refuse every acks=all write.
        # Either way the topic is not as the document says, and a check reports it.
        await admin.create_topics([NewTopic(control, 1, 1, topic_configs={"min.insync.replicas": "2"})])
        await _produce_acks_all(kafka_bootstrap, control)
        export["topics"].append({"name": control, "partitions": 1, "replicationFactor": 3,
                                 "configs": {"min.insync.replicas": "2"}})
        document.write_text(json.dumps(export))
        differs = run(env, "apply-topics", str(document), "--replication-factor", "1")
        assert differs.returncode == 1, differs.stdout
        assert f"differs  {control}: min.insync.replicas=2, wanted 1" in differs.stdout
    finally:
        await admin.delete_topics([views, dlq, control])
        await admin.close()
