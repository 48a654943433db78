"""The seeded workload: the same seed gives the same records, and ``every_case`` holds what the
broker tests rely on, as the independent oracle reads it (no broker: partitions are assigned
here by key, offsets in produce order)."""

from __future__ import annotations

import zlib
from collections import Counter
from datetime import datetime

import orjson

from app.generator import BAD_KINDS, SPECIAL_USERS, Workload
from tests.support.oracle import HOUR, Produced, oracle, segments_from

NOW = 1_795_183_387_120  # 2026-11-20T14:03:07.120Z
START = NOW - 75 * HOUR
VIEWS = 3000


def produced(records: list) -> list[Produced]:
    offsets: Counter = Counter()
    out = []
    for key, value, _ in records:
        partition = zlib.crc32(key or b"") % 6
        out.append(Produced(partition, offsets[partition], key, value))
        offsets[partition] += 1
    return out


def every_case(seed: int = 1) -> tuple[Workload, list]:
    workload = Workload.every_case(seed)
    return workload, list(workload.views(VIEWS, START, 72 * HOUR / VIEWS, now_ms=NOW))


def test_the_same_seed_gives_the_same_records_and_another_seed_others():
    assert every_case(1)[1] == every_case(1)[1]
    assert Workload(seed=3).profiles() == Workload(seed=3).profiles()
    assert every_case(1)[1] != every_case(2)[1]
    plain = Workload(seed=3, users=50, properties=20)
    first = list(plain.views(500, START, 1000, id_prefix="a"))
    assert first == list(plain.views(500, START, 1000, id_prefix="a"))
    assert first != list(plain.views(500, START, 1000, id_prefix="b"))


def test_a_plain_workload_is_every_view_once_in_event_time_order():
    records = list(Workload(seed=3, users=50, properties=20, burst_every=100).views(1000, START, 1000))
    docs = [orjson.loads(value) for _, value, _ in records]
    assert all(intended == "view" for _, _, intended in records)
    assert len({d["eventId"] for d in docs}) == len(docs) > 1000  # the bursts come on top
    stamps = [datetime.fromisoformat(d["timestamp"]) for d in docs]
    assert stamps == sorted(stamps)


def test_every_case_holds_every_case_the_broker_tests_rely_on():
    workload, records = every_case()
    profiles = workload.profiles()
    segments = segments_from(profiles)
    assert segments["user-moved"] == "renter" and "user-gone" not in segments
    assert profiles[-1].key == b"user-last" and workload.segment_of == segments
    views = produced(records)
    exp = oracle(views, profiles, NOW)
    for rec, (_, _, intended) in zip(views, records, strict=True):
        if intended != "view":  # each bad record is rejected for the reason it was made for
            assert exp.dlq[(rec.partition, rec.offset)] == intended, rec.value[:120]
    reasons = Counter(exp.dlq.values())
    assert all(reasons[kind] > 0 for kind in BAD_KINDS) and reasons["late"] > 0, reasons
    assert exp.stats["duplicate"] > 0 and exp.stats["hourly_late"] > 0
    assert exp.stats["segment:unknown"] > 0
    users = {orjson.loads(value)["userId"] for _, value, intended in records if intended == "view"}
    assert set(SPECIAL_USERS) <= users
    # prop-edge: 21 views == 3 x (168 / 24) exactly; prop-hot: 60 == 2 x 30 last week
    assert [v for (p, _), v in exp.spikes.items() if p == "prop-edge"] == [21]
    assert [v for (s, p, _), v in exp.trends.items() if (s, p) == ("investor", "prop-hot")] == [(60, 30)]
    assert len(exp.spikes) > 10  # the bursts


def test_bad_records_come_in_turn_and_duplicates_repeat_an_event_id():
    workload = Workload(seed=5, users=50, properties=20, bad_rate=0.05, duplicate_rate=0.05)
    records = list(workload.views(2000, START, 1000, now_ms=NOW))
    kinds = [intended for _, _, intended in records if intended != "view"]
    assert kinds[: 2 * len(BAD_KINDS)] == list(BAD_KINDS) * 2
    ids = Counter(orjson.loads(v)["eventId"] for _, v, i in records if i == "view")
    assert 50 < sum(n - 1 for n in ids.values()) < 150


def test_a_producer_whose_acks_stop_says_so_once_and_says_when_they_resume(caplog):
    import logging

    from app.generator import StallLog

    caplog.set_level(logging.WARNING, logger="generator")
    stalls = StallLog("views", warn_after_s=10)
    stalls.observe(0, 0, 5)
    stalls.observe(1, 2, 3)  # acks arrive: no stall
    for t in range(2, 30):
        stalls.observe(t, 2, 3 + t)  # sending goes on, nothing is acknowledged
    assert stalls.stalled_at == 1
    stalls.observe(30, 32, 0)  # every ack at once
    stalls.observe(31, 32, 0)

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("producer to views stalled: 14 records without an ack for 10s")
    assert messages[1] == "producer to views resumed after 29s"


async def test_a_record_the_full_producer_did_not_take_is_handed_over_again_once_taken():
    from aiokafka.errors import KafkaTimeoutError

    from app.generator import _send

    class Producer:
        def __init__(self) -> None:
            self.tries = 0
            self.taken: list[tuple] = []

        async def send(self, topic, value, key):  # noqa: ANN001, ANN202
            self.tries += 1
            if self.tries <= 2:  # buffer full for request_timeout_ms: the record is not taken
                raise KafkaTimeoutError()
            self.taken.append((topic, key, value))
            return "future"

    producer = Producer()
    assert await _send(producer, "views", (b"k", b"v")) == "future"
    assert producer.tries == 3 and producer.taken == [("views", b"k", b"v")]
