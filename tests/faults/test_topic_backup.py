"""The topic configuration backup across two brokers: ``export-topics`` on the shared broker,
``apply-topics`` on a dedicated one (the disaster-recovery cluster), as an operator runs them."""

from __future__ import annotations

import json

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.support.commands import run
from tests.support.workers import isolated_env

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]


async def test_export_then_apply_on_another_cluster(dedicated_broker, kafka_bootstrap, tmp_path):
    primary = isolated_env(kafka_bootstrap)
    views = primary["VIEWS_TOPIC"]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # the input topics as an upstream team made them, with their own settings
        await admin.create_topics([
            NewTopic(views, 6, 1, topic_configs={"retention.ms": "1209600000"}),
            NewTopic(primary["PROFILES_TOPIC"], 1, 1,
                     topic_configs={"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}),
        ])
    finally:
        await admin.close()
    made = run(primary, "create-topics")
    assert made.returncode == 0, made.stderr[-2000:]

    backup = tmp_path / "topics.json"
    exported = run(primary, "export-topics", "--output", str(backup))
    assert exported.returncode == 0, exported.stderr[-2000:]
    doc = json.loads(backup.read_text())
    topics = {t["name"]: t for t in doc["topics"]}
    app_id = primary["APP_ID"]
    assert len(topics) == 13 and doc["appId"] == app_id
    assert topics[views] == {"name": views, "partitions": 6, "replicationFactor": 1,
                             "configs": {"retention.ms": "1209600000"}}
    assert topics[primary["PROFILES_TOPIC"]]["configs"] == {
        "cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
    assert topics[f"{app_id}-views-state-changelog"]["configs"] == {"cleanup.policy": "compact"}
    assert topics[f"{views}.dlq"]["configs"]["max.message.bytes"] == "1114112"

    dr = {**primary, "KAFKA_BOOTSTRAP_SERVERS": dedicated_broker.bootstrap}
    check = run(dr, "apply-topics", str(backup), "--check")
    assert check.returncode == 1 and check.stdout.count("missing ") == 13, check.stdout

    applied = run(dr, "apply-topics", str(backup))
    assert applied.returncode == 0, applied.stdout + applied.stderr[-2000:]
    assert applied.stdout.count("created ") == 13, applied.stdout
    again = run(dr, "export-topics")
    assert again.returncode == 0
    assert json.loads(again.stdout)["topics"] == doc["topics"]  # the same topics, exactly

    checked = run(dr, "apply-topics", str(backup), "--check")
    assert checked.returncode == 0 and checked.stdout.count("ok ") == 13, checked.stdout

    # A topic someone changed by hand on the DR cluster is reported, not touched.
    dr_admin = AIOKafkaAdminClient(bootstrap_servers=dedicated_broker.bootstrap)
    await dr_admin.start()
    try:
        await dr_admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, views, {"retention.ms": "3600000"})])
    finally:
        await dr_admin.close()
    differs = run(dr, "apply-topics", str(backup))
    assert differs.returncode == 1, differs.stdout
    assert f"differs  {views}: retention.ms=3600000, wanted 1209600000" in differs.stdout

    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 1, "topics": [{"name": "a b", "partitions": 1}]}')
    refused = run(dr, "apply-topics", str(bad))
    assert refused.returncode == 2 and "is not a topic name" in refused.stderr, refused
