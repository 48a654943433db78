"""Two live workers, the seeded workload with every kind of hostile record mixed in.

Each hostile record is one a producer or a client could send: ids holding the store's old key
separator or control characters, ids past 256 bytes, keys that are not the record's id,
tombstones keyed with non-UTF-8 or internal-looking bytes, JSON nested past 32 levels, a value
near the broker's request limit, ids holding C1, bidirectional or invisible characters, times
that are a valid date in their own offset but before year 1 or after 9999 in UTC; and, beside
them, valid ids made of ``:``, ``/``, ``%``, spaces, non-Latin scripts and 0xFF-looking text,
which must work everywhere (stores, topics, insight ids, URLs). Both workers must stay up without a restart, every answer must equal the oracle's,
every hostile record must be in its dead-letter topic once with the expected reason, and
nothing may be missing. Every record is produced in batches compressed with each codec in turn
(gzip, snappy, lz4, zstd).
"""

from __future__ import annotations

import json
import random
import shutil
import time
from datetime import datetime
from urllib.parse import quote

import pytest

from app.generator import Workload
from tests.support.codecs import CODECS, batch_codecs, produce_rotating
from tests.support.checks import check_all, get_all, load_profiles
from tests.support.oracle import HOUR, hour_of, iso, oracle, profile_verdict, segments_from, to_ms
from tests.support.topics import read_topic
from tests.support.workers import Worker, isolated_env, wait_caught_up, wait_views_committed

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SEED = 20261129
VIEWS = 2000
HOURS = 72
ODD_PROP = "a:b/c %物件"  # valid: must be counted, answered over HTTP and get a spike insight
FF_PROP = "ÿþ-prop"  # 0xFF-looking text, valid
ODD_USER = "user:ü/1 %"
ODD_SEGMENT = "seg:ü/ x"
NEAR_LIMIT = 1_048_400  # bytes: the record just fits the broker's default limit (1,048,588)


def _nested(levels: int) -> str:
    return '{"n":' * (levels - 1) + "{}" + "}" * (levels - 1)


def hostile_profiles() -> list[tuple[bytes | None, bytes | None, str]]:
    """(key, value, expected): a contract reason, or "profile" for a valid odd one."""
    def doc(user: str, segment: str) -> bytes:
        return json.dumps({"userId": user, "segment": segment, "version": "1.0"}).encode()

    # (A compacted topic refuses records without a key: the broker stops those itself.)
    deep = ('{"userId":"user-h5","segment":"investor","version":"2.0","profile":%s}'
            % _nested(300)).encode()
    return [
        (b"user-h1", doc("user-h1", "s\x1fx"), "bad_id"),
        (b"\xff\xfe", None, "bad_id"),  # a tombstone whose key is not UTF-8
        (b"\xffnext-offset:0", None, "bad_id"),  # keyed like an internal key
        (b"user-h2", doc("user-h3", "investor"), "key_mismatch"),
        (b"user-h5", deep, "malformed_json"),
        (b"u\x00", doc("u\x00", "investor"), "bad_id"),
        (b"x" * 300, doc("x" * 300, "investor"), "bad_id"),
        ("user-h6\u0085".encode(), doc("user-h6\u0085", "investor"), "bad_id"),  # C1 control
        (b"user-h7", doc("user-h7", "inv\u2066estor"), "bad_id"),  # a bidi isolate
        ("\ufeffuser-h8".encode(), None, "bad_id"),  # a tombstone keyed with a BOM
        (b"user-h9", json.dumps({"userId": "user-h9", "segment": "investor", "version": "2.0",
                                 "updatedAt": "0001-01-01T00:00:00+00:01"}).encode(),
         "bad_timestamp"),  # a minute before year 1 in UTC
        (ODD_USER.encode(), doc(ODD_USER, ODD_SEGMENT), "profile"),
        ("ÿþ-user".encode(), doc("ÿþ-user", "investor"), "profile"),
    ]


def mix_in_hostile_views(records: list[tuple], rng: random.Random) -> list[tuple]:
    """The workload's views with hostile and odd-but-valid views inserted at random places,
    each stamped at the newest event time before it (never late, never in the future)."""
    newest, stamps = 0, []
    for _, value, intended in records:
        if intended == "view":
            doc = json.loads(value)
            newest = max(newest, to_ms(datetime.fromisoformat(doc["timestamp"])))
        stamps.append(newest)

    def view(event_id: str, prop: str, user: str, ts: int, **extra: object) -> bytes:
        doc = {"eventId": event_id, "eventType": "property.viewed", "version": "1.0",
               "timestamp": iso(ts), "propertyId": prop, "userId": user, **extra}
        return json.dumps(doc).encode()

    def near_limit(ts: int) -> bytes:
        """A view of exactly NEAR_LIMIT bytes: oversized, and its dead-letter copy with headers
        is past the broker's default 1 MiB record limit."""
        raw = view("h-near-limit", "prop-6", "user-6", ts, pad="")
        return raw.replace(b'"pad": ""', b'"pad": "' + b"x" * (NEAR_LIMIT - len(raw)) + b'"')

    def at_time(event_id: str, stamp: str) -> bytes:
        doc = {"eventId": event_id, "eventType": "property.viewed", "version": "1.0",
               "timestamp": stamp, "propertyId": "prop-7", "userId": "user-7"}
        return json.dumps(doc).encode()

    out = list(records)
    inserts: list[tuple[int, tuple]] = []

    def at(position: int, make) -> None:  # noqa: ANN001
        inserts.append((position, make(stamps[min(position, len(stamps) - 1)] or 1)))

    n = len(records)
    hostile = [
        lambda ts: ("a\x1fb".encode(), view("h-sep-prop", "a\x1fb", "user-1", ts), "bad_id"),
        lambda ts: (b"prop-1", view("h-sep-user", "prop-1", "b\x1fc", ts), "bad_id"),
        lambda ts: (b"prop-1", view("", "prop-1", "user-1", ts), "bad_id"),
        lambda ts: (b"prop-2", view("h-long-user", "prop-2", "u" * 300, ts), "bad_id"),
        lambda ts: (b"prop-2", view("h-huge-user", "prop-2", "u" * 60_000, ts), "bad_id"),
        lambda ts: (("p" * 300).encode(), view("h-long-prop", "p" * 300, "user-2", ts), "bad_id"),
        lambda ts: (b"prop-3", view("h-tab", "prop-3", "user\t3", ts), "bad_id"),
        lambda ts: (b"prop-3", view("h-foreign-key", "prop-4", "user-3", ts), "key_mismatch"),
        lambda ts: (None, view("h-no-key", "prop-4", "user-3", ts), "key_mismatch"),
        lambda ts: (b"prop-5", view("h-deep", "prop-5", "user-5", ts,
                                    extra=json.loads(_nested(40))), "malformed_json"),
        lambda ts: (b"prop-6", near_limit(ts), "oversized"),
        lambda ts: ("prop-7\u202e".encode(), view("h-bidi", "prop-7\u202e", "user-7", ts), "bad_id"),
        lambda ts: (b"prop-7", view("h-zwsp", "prop-7", "user\u200b7", ts), "bad_id"),
        lambda ts: (b"prop-7", view("h-c1\u009b", "prop-7", "user-7", ts), "bad_id"),
        lambda ts: (b"prop-7", at_time("h-before-1", "0001-01-01T00:00:00+00:01"),
                    "bad_timestamp"),
        lambda ts: (b"prop-7", at_time("h-after-9999", "9999-12-31T23:59:59.999-00:01"),
                    "bad_timestamp"),
    ]
    for make in hostile:
        at(rng.randrange(n // 5, n), make)
    # Valid odd ids: a burst of 24 views of ODD_PROP in one place, at one event time (a spike
    # over a zero baseline), and views by the odd user (an odd segment) of a 0xFF-looking
    # property.
    burst_at = rng.randrange(n // 3, n // 2)
    for j in range(24):
        at(burst_at, lambda ts, j=j: (ODD_PROP.encode(),
                                      view(f"odd-{j}", ODD_PROP, f"user-{j}", ts), "view"))
    for j in range(6):
        at(rng.randrange(n // 5, n),
           lambda ts, j=j: (FF_PROP.encode(), view(f"ff-{j}", FF_PROP, ODD_USER, ts), "view"))
    for position, record in sorted(inserts, key=lambda item: -item[0]):
        out.insert(position, record)
    return out


async def test_two_workers_survive_hostile_records_and_answer_exactly(kafka_bootstrap, capsys):
    env = isolated_env(kafka_bootstrap)
    workers = [Worker(env).start(), Worker(env).start()]
    passed = False
    try:
        for worker in workers:
            await worker.wait_ready(180)
        pids = [worker.proc.pid for worker in workers]
        a, b = workers
        workload = Workload.every_case(SEED)
        odd_profiles = hostile_profiles()
        await produce_rotating(kafka_bootstrap, env["PROFILES_TOPIC"], odd_profiles, chunks=4)
        profiles = odd_profiles + await load_profiles(
            kafka_bootstrap, a.url, workload, env["PROFILES_TOPIC"]
        )
        segments = segments_from(profiles)
        assert segments[ODD_USER] == ODD_SEGMENT and "user-h3" not in segments
        for key, value, expected in odd_profiles:  # the oracle reads them as intended
            verdict = profile_verdict(key, value)
            assert (verdict if isinstance(verdict, str) else "profile") == expected, key

        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR + 17 * 60_000
        records = list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now))
        records = mix_in_hostile_views(records, random.Random(SEED))
        produced = await produce_rotating(kafka_bootstrap, env["VIEWS_TOPIC"], records)
        await wait_views_committed(kafka_bootstrap, env, workers)
        await wait_caught_up(kafka_bootstrap, env, timeout=180)

        exp = oracle(produced, profiles, now)
        for rec, (_, _, intended) in zip(produced, records):  # the oracle reads them as intended
            if intended != "view":
                assert exp.dlq.get((rec.partition, rec.offset)) == intended, rec.value[:120]
        hostile_reasons = {r for _, _, r in records} - {"view"}
        assert {"bad_id", "key_mismatch", "malformed_json", "oversized",
                "bad_timestamp"} <= hostile_reasons
        codecs = await batch_codecs(kafka_bootstrap, env["VIEWS_TOPIC"])
        assert set(codecs) == set(CODECS) and sum(codecs.values()) == len(produced), codecs
        assert any(prop == ODD_PROP for prop, _ in exp.spikes), "the odd property must spike"
        assert any(seg == ODD_SEGMENT for seg, _ in exp.weekly), exp.weekly.keys()

        # Every answer, from either worker (each routes to the owner of the key).
        urls = [worker.url for worker in workers]
        problems, _ = await check_all(kafka_bootstrap, urls, env, exp, produced, SEED, True)
        assert not problems, problems[:20]

        # Profiles: the hostile ones are dead letters, once each, with their reasons; the odd
        # valid ones are served by both workers.
        wanted = sorted((k, v, r) for k, v, r in odd_profiles if r != "profile")
        dead = await read_topic(kafka_bootstrap, f"{env['PROFILES_TOPIC']}.dlq")
        got = sorted((d.key, d.value, dict(d.headers)["dlq.reason"].decode()) for d in dead)
        assert got == wanted
        for worker in workers:
            answers = await get_all(worker.url, [
                f"/api/users/{quote(ODD_USER, safe='')}", f"/api/users/{quote('ÿþ-user')}",
                "/api/users/user-h1", "/api/users/user-h2", "/api/users/user-h3",
            ])
            assert answers[f"/api/users/{quote(ODD_USER, safe='')}"] == (
                200, {"userId": ODD_USER, "segment": ODD_SEGMENT, "version": "1.0"})
            assert answers[f"/api/users/{quote('ÿþ-user')}"][0] == 200
            for user in ("user-h1", "user-h2", "user-h3"):
                assert answers[f"/api/users/{user}"][0] == 404, answers

        # Hostile requests: 4xx JSON, never a 500 or a hang.
        bad_requests = [
            "/api/properties/%00%ff/views?hour=2026-11-20T14:00:00Z",
            "/api/properties/prop-1/views?hour=9999-12-31T23:00:00Z",
            "/api/properties/prop-1/views?hour=0000-01-01T00:00:00Z",
            "/api/properties/prop-1/views/history?from=0001-01-01T00:00:00Z&to=9999-12-31T23:00:00Z",
            "/api/segments/investor/weeks/9999-12-27",
            "/api/segments/investor/weeks/0000-01-03",
            f"/api/properties/{'p' * 300}/views?hour=2026-11-20T14:00:00Z",
            "/api/insights?limit=-1",
        ]
        for worker in workers:
            answers = await get_all(worker.url, bad_requests)
            for path, (status, body) in answers.items():
                assert 400 <= status < 500 and isinstance(body, dict) and "error" in body, \
                    (path, status, body)

        assert all(w.alive for w in workers) and [w.proc.pid for w in workers] == pids
        with capsys.disabled():
            print(f"\n[test_hostile] {len(produced)} views, {len(exp.dlq)} dead letters "
                  f"({sorted(hostile_reasons)}), {len(odd_profiles)} odd profiles; both workers "
                  f"up, every answer equal to the oracle")
        passed = True
    finally:
        for worker in workers:
            worker.stop(30)
        if passed:
            for worker in workers:
                if worker.data_dir is not None:
                    shutil.rmtree(worker.data_dir, ignore_errors=True)
