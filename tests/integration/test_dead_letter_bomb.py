"""A gzip bomb on each input of a live worker: a record of a few KiB on the wire that inflates to
8 MiB, far past DLQ_MAX_MESSAGE_BYTES (1,114,112). Its dead-letter copy is cut to fit, with
``dlq.truncated: true`` and ``dlq.original.bytes``, and each partition goes on with the
records after it (counted, applied, served). Before, the producer refused the copy and the
partition could never commit again."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from urllib.parse import quote

import pytest
from aiokafka import AIOKafkaProducer

from app.models.dead_letter import record_size
from tests.support.checks import get_all
from tests.support.oracle import HOUR, hour_of, iso
from tests.support.topics import read_topic
from tests.support.workers import Worker, isolated_env, wait_caught_up, wait_views_committed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DLQ_LIMIT = 1_114_112  # the default DLQ_MAX_MESSAGE_BYTES
BOMB_BYTES = 8 * 1024 * 1024


def bomb(doc: dict) -> bytes:
    """A JSON object of exactly BOMB_BYTES: ``doc`` and a long run of one character."""
    head = json.dumps({**doc, "pad": ""}).encode()[:-2]  # up to the pad's opening quote
    value = head + b"x" * (BOMB_BYTES - len(head) - 2) + b'"}'
    assert len(value) == BOMB_BYTES and json.loads(value)["pad"][:1] == "x"
    return value


async def send_gzip(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", acks="all",
                                max_request_size=2 * BOMB_BYTES)
    await producer.start()
    try:
        for key, value in records:
            await (await producer.send(topic, value, key=key, partition=0))
    finally:
        await producer.stop()


async def test_a_gzip_bomb_is_dead_lettered_cut_to_fit_and_the_partition_goes_on(
        kafka_bootstrap, capsys):
    env = isolated_env(kafka_bootstrap, TOPIC_PARTITIONS="1")
    worker = Worker(env).start()
    passed = False
    try:
        await worker.wait_ready(180)
        pid = worker.proc.pid
        hour = hour_of(int(time.time() * 1000)) - 2 * HOUR
        bombs = {
            env["PROFILES_TOPIC"]: (b"user-b", bomb({"userId": "user-b", "segment": "s"})),
            env["PROPERTY_EVENTS_TOPIC"]: (b"prop-b", bomb({
                "eventId": "e-bomb", "eventType": "property.created", "timestamp": iso(hour),
                "propertyId": "prop-b", "data": {"title": "t", "city": "c", "price": 1}})),
            env["VIEWS_TOPIC"]: (b"prop-b", bomb({
                "eventId": "v-bomb", "timestamp": iso(hour), "propertyId": "prop-b",
                "userId": "user-1"})),
        }
        after = {
            env["PROFILES_TOPIC"]: [(b"user-1", json.dumps(
                {"userId": "user-1", "segment": "investor"}).encode())],
            env["PROPERTY_EVENTS_TOPIC"]: [(b"prop-b", json.dumps({
                "eventId": "e-1", "eventType": "property.created", "timestamp": iso(hour),
                "propertyId": "prop-b", "data": {"title": "Loft", "city": "Lyon", "price": 1850},
            }).encode())],
            env["VIEWS_TOPIC"]: [(b"prop-b", json.dumps({
                "eventId": f"v-{j}", "timestamp": iso(hour + j * 60_000), "propertyId": "prop-b",
                "userId": f"user-{j % 4}"}).encode()) for j in range(10)],
        }
        for topic in bombs:
            await send_gzip(kafka_bootstrap, topic, [bombs[topic], *after[topic]])

        await wait_views_committed(kafka_bootstrap, env, [worker], timeout=180)
        await wait_caught_up(kafka_bootstrap, env, timeout=180)
        view_path = f"/api/properties/prop-b/views?hour={quote(iso(hour))}"
        deadline = time.monotonic() + 60
        while True:  # the profiles table reads user.profiles on its own
            answers = await get_all(worker.url, [view_path, "/api/properties/prop-b",
                                                 "/api/users/user-1", "/api/users/user-b"])
            if answers["/api/users/user-1"][0] == 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        assert answers[view_path] == (200, {
            "propertyId": "prop-b", "windowStart": iso(hour), "windowEnd": iso(hour + HOUR),
            "views": 10, "uniqueUsers": 4}), answers[view_path]
        status, prop = answers["/api/properties/prop-b"]
        assert status == 200 and prop["data"]["price"] == 1850 and prop["version"] == 1, prop
        assert answers["/api/users/user-1"] == (200, {"userId": "user-1", "segment": "investor",
                                                      "version": "1.0"})
        assert answers["/api/users/user-b"][0] == 404

        for topic, (key, value) in bombs.items():
            [dead] = await read_topic(kafka_bootstrap, f"{topic}.dlq")
            headers = dict(dead.headers)
            assert headers["dlq.reason"] == b"oversized" and headers["dlq.truncated"] == b"true"
            assert headers["dlq.original.bytes"] == str(BOMB_BYTES).encode()
            assert headers["dlq.origin.offset"] == b"0"
            assert dead.key == key and value.startswith(dead.value)
            assert DLQ_LIMIT - 64 < record_size(dead.key, dead.value, dead.headers) <= DLQ_LIMIT
        assert worker.alive and worker.proc.pid == pid
        with capsys.disabled():
            print(f"\n[test_dead_letter_bomb] 3 gzip bombs of {BOMB_BYTES} bytes: dead letters "
                  f"cut to {len(dead.value)} bytes, every partition went on")
        passed = True
    finally:
        worker.stop(30)
        if passed and worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
