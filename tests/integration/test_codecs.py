"""Every codec on every input topic, from two producers: records compressed with gzip, snappy,
lz4 and zstd, sent by aiokafka and by Kafka's own console producer (``--compression-codec``),
to ``user.profiles`` (before the worker starts: its profiles reader must read them to become
ready), ``property.events`` and ``property.views``. The batches' own headers show each codec
on the broker; the worker must stay up and answer exactly: hourly counts and unique users,
property states, profiles held, and one dead letter per codec and producer on each input with
its reason (an invisible or bidirectional character in an id, a time before year 1 in UTC).

Before cramjam was installed, the first snappy batch stopped the worker from becoming ready
(the profiles reader retried for good) and a lz4 or zstd batch stopped the stages."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from urllib.parse import quote

import pytest

from app.settings import Settings
from app.topics import ensure_topics
from tests.support.checks import get_all
from tests.support.codecs import CODECS, batch_codecs, console_produce, produce_compressed
from tests.support.oracle import HOUR, hour_of, iso
from tests.support.topics import read_topic
from tests.support.workers import Worker, isolated_env, wait_caught_up, wait_views_committed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

PRODUCERS = ("aiokafka", "console")
USERS = 3
VIEWS = 12


def dumps(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def records_of(tag: str, hour: int) -> dict[str, list[tuple[bytes, bytes, str]]]:
    """The (key, value, expected) records of one codec and producer, per input: valid ones
    ("ok") and one of each input that must be a dead letter (its reason)."""
    prop = f"p-{tag}"
    users = [f"u-{tag}-{i}" for i in range(USERS)]
    profiles = [(u.encode(), dumps({"userId": u, "segment": f"seg-{tag}", "version": "2.0",
                                    "updatedAt": "2026-11-01T09:00:00+01:00"}), "ok")
                for u in users]
    profiles.append((f"x-{tag}".encode(), dumps({"userId": f"x-{tag}", "segment": "s\u200bx"}),
                     "bad_id"))

    def event(eid: str, kind: str, ts: str, data: dict) -> bytes:
        return dumps({"eventId": f"{eid}-{tag}", "eventType": f"property.{kind}",
                      "timestamp": ts, "propertyId": prop, "data": data})

    events = [
        (prop.encode(), event("c", "created", iso(hour - HOUR),
                              {"title": f"Loft {tag}", "city": "Lyon", "price": 1850}), "ok"),
        (prop.encode(), event("old", "updated", "0001-01-01T00:00:00+00:01", {"price": 1}),
         "bad_timestamp"),
        (prop.encode(), event("u", "updated", iso(hour - HOUR + 60_000), {"price": 1790}), "ok"),
    ]
    views = [(prop.encode(), dumps({"eventId": f"v{j}-{tag}", "eventType": "property.viewed",
                                    "timestamp": iso(hour + j * 60_000), "propertyId": prop,
                                    "userId": users[j % USERS]}), "ok")
             for j in range(VIEWS)]
    views.append((prop.encode(), dumps({"eventId": f"vbad-{tag}", "timestamp": iso(hour),
                                        "propertyId": prop, "userId": "u\u202eresu"}), "bad_id"))
    return {"profiles": profiles, "events": events, "views": views}


async def send(bootstrap: str, topic: str, records: list[tuple], codec: str, producer: str) -> None:
    pairs = [(key, value) for key, value, _ in records]
    if producer == "aiokafka":
        await produce_compressed(bootstrap, topic, pairs, codec)
    else:
        await console_produce(bootstrap, topic, pairs, codec)


async def test_every_codec_from_both_producers_on_every_input(kafka_bootstrap, capsys):
    env = isolated_env(kafka_bootstrap, TOPIC_PARTITIONS="3")
    topics = {"profiles": env["PROFILES_TOPIC"], "events": env["PROPERTY_EVENTS_TOPIC"],
              "views": env["VIEWS_TOPIC"]}
    settings = Settings(**{name.lower(): value for name, value in env.items()})
    await ensure_topics(settings)
    now = int(time.time() * 1000)
    hour = hour_of(now) - 2 * HOUR
    runs = {(codec, producer): records_of(f"{codec}-{producer}", hour)
            for codec in CODECS for producer in PRODUCERS}

    async def send_all(kind: str) -> None:
        for (codec, producer), records in runs.items():
            await send(kafka_bootstrap, topics[kind], records[kind], codec, producer)

    await send_all("profiles")  # before the worker starts: its profiles reader reads them first
    worker = Worker(env).start()
    passed = False
    try:
        await worker.wait_ready(180)
        pid = worker.proc.pid
        await send_all("events")
        await send_all("views")
        for kind, topic in topics.items():  # each codec really is on the broker, and only those
            expected = Counter({codec: sum(len(runs[codec, p][kind]) for p in PRODUCERS)
                                for codec in CODECS})
            assert await batch_codecs(kafka_bootstrap, topic) == expected, kind

        assert topics["views"] == env["VIEWS_TOPIC"]
        await wait_views_committed(kafka_bootstrap, env, [worker], timeout=180)
        await wait_caught_up(kafka_bootstrap, env, timeout=180)

        paths = {}
        for codec, producer in runs:
            tag = f"{codec}-{producer}"
            paths[f"/api/properties/p-{tag}/views?hour={quote(iso(hour))}"] = (
                200, {"propertyId": f"p-{tag}", "windowStart": iso(hour),
                      "windowEnd": iso(hour + HOUR), "views": VIEWS, "uniqueUsers": USERS})
            for i in range(USERS):
                paths[f"/api/users/u-{tag}-{i}"] = (200, {
                    "userId": f"u-{tag}-{i}", "segment": f"seg-{tag}", "version": "2.0",
                    "updatedAt": "2026-11-01T09:00:00+01:00"})
            paths[f"/api/users/x-{tag}"] = (404, None)
        answers = await get_all(worker.url, list(paths))
        for path, (status, body) in paths.items():
            got_status, got = answers[path]
            assert got_status == status and (body is None or got == body), (path, answers[path])
        props = await get_all(worker.url, [f"/api/properties/p-{c}-{p}" for c, p in runs])
        for (codec, producer) in runs:
            status, body = props[f"/api/properties/p-{codec}-{producer}"]
            assert status == 200 and (body["version"], body["data"]["price"]) == (2, 1790), body

        for kind, topic in topics.items():  # one dead letter per codec and producer, no more
            expected = sorted((key, value, reason) for records in runs.values()
                              for key, value, reason in records[kind] if reason != "ok")
            dead = await read_topic(kafka_bootstrap, f"{topic}.dlq")
            got = sorted((d.key, d.value, dict(d.headers)["dlq.reason"].decode()) for d in dead)
            assert got == expected, kind
        assert worker.alive and worker.proc.pid == pid
        with capsys.disabled():
            print(f"\n[test_codecs] {len(CODECS)} codecs x {len(PRODUCERS)} producers on "
                  f"{len(topics)} inputs: every answer exact, {len(paths)} HTTP checks")
        passed = True
    finally:
        worker.stop(30)
        if passed and worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
