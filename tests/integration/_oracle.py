"""An independent oracle for the pipeline (CONTRACT §3-§5), the seeded workload it judges, and
the Kafka/HTTP helpers the integration tests share.

Nothing here imports ``app``: validation, windows, dedupe, lateness, joins, counts and insight
rules are re-derived from the contract's text, on the records exactly as produced (partition
and offset from the producer's RecordMetadata, so the order is the broker's).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
WEEK = 7 * DAY
# Contract defaults (§3-§5).
MAX_BYTES, FUTURE_TOLERANCE, DEDUPE_HORIZON = 64 * 1024, 5 * MIN, DAY
HOURLY_GRACE, WEEKLY_GRACE = 15 * MIN, HOUR
SPIKE_MIN, SPIKE_RATIO, BASELINE_HOURS = 20, 3, 24
TREND_MIN, TREND_RATIO = 50, 2
SEGMENTS = ("investor", "first_time_buyer", "renter", "agent", "developer")
BAD_REASONS = ("malformed_json", "missing_field", "bad_type", "bad_timestamp",
               "unsupported_version", "oversized", "future_timestamp")
DLQ_HEADERS = ("dlq.reason", "dlq.detail", "dlq.origin.topic", "dlq.origin.partition",
               "dlq.origin.offset")


def pct(component: str) -> str:
    """An id inside an insightId: UTF-8 bytes outside A-Z a-z 0-9 - . _ ~ as %XX."""
    safe = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in component.encode())


# --- time, by the calendar rather than by modular arithmetic ---------------------------------
def to_dt(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def to_ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def hour_of(ms: int) -> int:
    return to_ms(to_dt(ms).replace(minute=0, second=0, microsecond=0))


def week_of(ms: int) -> int:
    """Monday 00:00 UTC of the ISO week holding ``ms``."""
    day = to_dt(ms).replace(hour=0, minute=0, second=0, microsecond=0)
    return to_ms(day - timedelta(days=day.isoweekday() - 1))


def iso(ms: int) -> str:
    moment = to_dt(ms)
    frac = f".{ms % 1000:03d}" if ms % 1000 else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


# --- the oracle ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Produced:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass
class Expected:
    hourly: dict = field(default_factory=lambda: defaultdict(lambda: [0, set()]))  # (prop, hour)
    weekly: dict = field(default_factory=dict)  # (segment, week) -> [views, users, Counter]
    spikes: dict = field(default_factory=dict)  # (prop, hour) -> views when it first held
    trends: dict = field(default_factory=dict)  # (segment, prop, week) -> (views, previous)
    dlq: dict = field(default_factory=dict)  # (partition, offset) -> reason
    stream_time: dict = field(default_factory=dict)  # partition -> ms
    partition_of: dict = field(default_factory=dict)  # propertyId -> partition (accepted views)
    stats: Counter = field(default_factory=Counter)

    def hour_answer(self, prop: str, hour: int) -> dict:
        views, users = self.hourly.get((prop, hour), (0, ()))
        return {"propertyId": prop, "windowStart": iso(hour), "windowEnd": iso(hour + HOUR),
                "views": views, "uniqueUsers": len(users)}

    def week_answer(self, segment: str, week: int) -> dict:
        views, users, props = self.weekly.get((segment, week), (0, (), Counter()))
        top = sorted(props.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        return {"segment": segment, "windowStart": iso(week), "windowEnd": iso(week + WEEK),
                "views": views, "uniqueUsers": len(users),
                "topProperties": [{"propertyId": p, "views": v} for p, v in top]}

    def insights(self) -> dict[str, tuple]:
        """insightId -> (type, subject, windowStart, windowEnd)."""
        out = {}
        for prop, hour in self.spikes:
            out[f"property_hourly_spike:{pct(prop)}:{iso(hour)}"] = (
                "property_hourly_spike", {"propertyId": prop}, iso(hour), iso(hour + HOUR))
        for segment, prop, week in self.trends:
            out[f"segment_property_trend:{pct(segment)}:{pct(prop)}:{iso(week)}"] = (
                "segment_property_trend", {"segment": segment, "propertyId": prop},
                iso(week), iso(week + WEEK))
        return out


def id_ok(value: object) -> bool:
    """The contract's id rule: a non-empty string of at most 256 UTF-8 bytes, no control
    character (U+0000-U+001F, U+007F)."""
    if not isinstance(value, str) or not value:
        return False
    try:
        raw = value.encode()
    except UnicodeEncodeError:
        return False
    return len(raw) <= 256 and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def depth(doc: object) -> int:
    """JSON nesting depth (a scalar is 0, ``{}`` is 1)."""
    if isinstance(doc, dict):
        return 1 + max((depth(v) for v in doc.values()), default=0)
    if isinstance(doc, list):
        return 1 + max((depth(v) for v in doc), default=0)
    return 0


def profile_verdict(key: bytes | None, value: bytes | None) -> str | tuple[str, str | None]:
    """A dead-letter reason, or (userId, segment) for a profile, (userId, None) for a delete."""
    try:
        user = key.decode() if key is not None else None
    except UnicodeDecodeError:
        user = None
    if not id_ok(user):
        return "bad_id"
    if value is None:
        return user, None
    if len(value) > MAX_BYTES:
        return "oversized"
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return "malformed_json"
    if not isinstance(doc, dict):
        return "bad_type"
    if depth(doc) > 32:
        return "malformed_json"
    version = doc.get("version", "1.0")
    if not isinstance(version, str):
        return "bad_type"
    if version.split(".")[0] not in ("1", "2"):
        return "unsupported_version"
    for name in ("userId", "segment"):
        if doc.get(name) is None:
            return "missing_field"
        if not isinstance(doc[name], str):
            return "bad_type"
        if not id_ok(doc[name]):
            return "bad_id"
    if doc["userId"] != user:
        return "key_mismatch"
    return user, doc["segment"]


def segments_from(profiles: list[tuple[bytes, bytes | None]]) -> dict[str, str]:
    """userId -> segment after applying the profile records in order (None deletes; records
    the contract rejects change nothing)."""
    table: dict[str, str] = {}
    for key, value, *_ in profiles:
        verdict = profile_verdict(key, value)
        if isinstance(verdict, str):
            continue
        user, segment = verdict
        if segment is None:
            table.pop(user, None)
        else:
            table[user] = segment
    return table


def validate(
    value: bytes | None, now_ms: int, key: bytes | None
) -> str | tuple[str, int, str, str]:
    """A dead-letter reason, or (eventId, event time, propertyId, userId)."""
    if value is None:
        return "malformed_json"
    if len(value) > MAX_BYTES:
        return "oversized"
    try:
        doc = json.loads(value)
    except (ValueError, RecursionError):
        return "malformed_json"
    if not isinstance(doc, dict):
        return "bad_type"
    if depth(doc) > 32:
        return "malformed_json"
    if not isinstance(doc.get("version", "1.0"), str):
        return "bad_type"
    if doc.get("version", "1.0").split(".")[0] not in ("1", "2"):
        return "unsupported_version"
    if doc.get("timestamp") is None:
        return "missing_field"
    if not isinstance(doc["timestamp"], str):
        return "bad_type"
    try:
        moment = datetime.fromisoformat(doc["timestamp"])
    except ValueError:
        return "bad_timestamp"
    if moment.tzinfo is None:
        return "bad_timestamp"
    ts = to_ms(moment)
    if ts > now_ms + FUTURE_TOLERANCE:
        return "future_timestamp"
    for name in ("eventId", "propertyId", "userId"):
        if doc.get(name) is None:
            return "missing_field"
        if not isinstance(doc[name], str):
            return "bad_type"
        if not id_ok(doc[name]):
            return "bad_id"
    if key is None or key != doc["propertyId"].encode():
        return "key_mismatch"
    return doc["eventId"], ts, doc["propertyId"], doc["userId"]


def oracle(views: list[Produced], segments: dict[str, str], now_ms: int) -> Expected:
    """The answers one uninterrupted run must give. Per partition, in offset order: invalid ->
    DLQ; same eventId accepted at an event time within 24 h of stream time -> duplicate; late
    for both windows -> DLQ "late"; else accepted (stream time = max), counted hourly unless
    late for its hour, weekly under the user's segment, spikes and trends checked after each
    count (the first time the rule holds). ``now_ms``: wall clock, for future timestamps."""
    exp = Expected()
    by_partition: dict[int, list[Produced]] = defaultdict(list)
    for rec in views:
        by_partition[rec.partition].append(rec)
    for partition, records in by_partition.items():
        stream_time, accepted_at = 0, {}
        for rec in sorted(records, key=lambda r: r.offset):
            verdict = validate(rec.value, now_ms, rec.key)
            if isinstance(verdict, str):
                exp.dlq[(partition, rec.offset)] = verdict
                continue
            event_id, ts, prop, user = verdict
            if event_id in accepted_at and accepted_at[event_id] > stream_time - DEDUPE_HORIZON:
                exp.stats["duplicate"] += 1
                continue
            hour, week = hour_of(ts), week_of(ts)
            hourly_late = hour + HOUR + HOURLY_GRACE <= stream_time
            weekly_late = week + WEEK + WEEKLY_GRACE <= stream_time
            if hourly_late and weekly_late:
                exp.dlq[(partition, rec.offset)] = "late"
                continue
            exp.stats["accepted"] += 1
            exp.partition_of[prop] = partition
            accepted_at[event_id] = ts
            stream_time = max(stream_time, ts)
            segment = segments.get(user, "unknown")
            exp.stats[f"segment:{segment}"] += 1
            if hourly_late:
                exp.stats["hourly_late"] += 1
            else:
                slot = exp.hourly[(prop, hour)]
                slot[0] += 1
                slot[1].add(user)
                before = sum(exp.hourly.get((prop, hour - k * HOUR), (0,))[0]
                             for k in range(1, BASELINE_HOURS + 1))
                # views >= 3 x (before / 24), in exact integer arithmetic
                if ((prop, hour) not in exp.spikes and slot[0] >= SPIKE_MIN
                        and slot[0] * BASELINE_HOURS >= SPIKE_RATIO * before):
                    exp.spikes[(prop, hour)] = slot[0]
            if not weekly_late:
                slot = exp.weekly.setdefault((segment, week), [0, set(), Counter()])
                slot[0] += 1
                slot[1].add(user)
                props = slot[2]
                props[prop] += 1
                previous = exp.weekly.get((segment, week - WEEK), (0, 0, Counter()))[2][prop]
                if ((segment, prop, week) not in exp.trends and props[prop] >= TREND_MIN
                        and props[prop] >= TREND_RATIO * previous):
                    exp.trends[(segment, prop, week)] = (props[prop], previous)
        exp.stream_time[partition] = stream_time
    return exp


# --- the seeded workload -------------------------------------------------------------------
@dataclass
class Workload:
    """Profiles first, then views over ``hours`` of event time ending ``end_ms``, with a prelude
    in the ISO week before, bursts (spikes), a property trending for one segment, out-of-order,
    late and duplicate views, users without profile and every bad-input kind."""

    seed: int
    views_topic: str
    profiles_topic: str
    users: int = 400
    properties: int = 300
    rng: random.Random = field(init=False)
    segment_of: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def profiles(self) -> list[tuple[bytes, bytes | None]]:
        """(key, value) in produce order; the last one is ``user-last``."""
        rng, out = self.rng, []

        def profile(user: str, segment: str, version: str) -> tuple[bytes, bytes]:
            doc = {"userId": user, "segment": segment, "version": version,
                   "updatedAt": "2026-11-01T09:00:00Z", "email": f"{user}@example.test"}
            if version == "2.0":
                doc["profile"] = {"firstName": "F", "lastName": user, "company": "Acme"}
            return user.encode(), json.dumps(doc).encode()

        for i in range(self.users):
            if rng.random() < 0.85:  # the others view without a profile -> "unknown"
                out.append(profile(f"user-{i}", rng.choice(SEGMENTS), rng.choice(("1.0", "2.0"))))
        out.append(profile("user-moved", "investor", "1.0"))
        out.append(profile("user-gone", "agent", "2.0"))
        out.append(profile("user-moved", "renter", "2.0"))  # v1 -> v2, another segment
        out.append((b"user-gone", None))  # tombstone: its views become "unknown"
        out.append(profile("user-last", "developer", "2.0"))
        self.segment_of = segments_from(out)
        return out

    def _doc(self, event_id: str, ts: int, prop: str, user: str) -> dict:
        stamp = iso(ts)
        if self.rng.random() < 0.05:  # the same instant with an explicit +02:00 offset
            local = to_dt(ts) + timedelta(hours=2)
            stamp = local.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
        return {"eventId": event_id, "eventType": "property.viewed", "version": "1.0",
                "timestamp": stamp, "propertyId": prop, "userId": user,
                "sessionId": f"s-{self.rng.randrange(10**6)}", "source": "web", "durationMs": 5200}

    def _bad(self, reason: str, n: int, ts: int, now_ms: int) -> bytes:
        doc = self._doc(f"bad-{self.seed}-{n}", ts, "prop-7", "user-1")
        if reason == "malformed_json":
            return json.dumps(doc).encode()[:-9]
        if reason == "missing_field":
            del doc["userId"]
        elif reason == "bad_type":
            doc["userId"] = 12345
        elif reason == "bad_timestamp":
            doc["timestamp"] = ("yesterday", "2026-11-20T14:03:07", "2026-02-30T10:00:00Z")[n % 3]
        elif reason == "unsupported_version":
            doc["version"] = "3.0"
        elif reason == "oversized":
            doc["notes"] = "x" * (70 * 1024)
        elif reason == "future_timestamp":
            doc["timestamp"] = iso(now_ms + 2 * HOUR)
        return json.dumps(doc).encode()

    def views(self, count: int, end_ms: int, now_ms: int, hours: int = 72) -> list[tuple]:
        """(key, value, intended) in produce order; ``intended`` is a bad reason, or "view"."""
        rng, out = self.rng, []
        users_by_segment = defaultdict(list)
        for user, segment in self.segment_of.items():
            users_by_segment[segment].append(user)
        investors = sorted(users_by_segment["investor"])
        start = end_ms - hours * HOUR
        # Prelude in the week before: the trending property's baseline for investors.
        prelude_week = week_of(start) - WEEK
        for i in range(30):
            ts = prelude_week + 3 * DAY + i * 7 * MIN
            doc = self._doc(f"pre-{self.seed}-{i}", ts, "prop-hot", rng.choice(investors))
            out.append((b"prop-hot", json.dumps(doc).encode(), "view"))
        for i in range(count // 20):
            ts = prelude_week + 4 * DAY + i * (2 * DAY // (count // 20))
            prop = f"prop-{rng.randrange(12)}"
            doc = self._doc(f"pre-{self.seed}-x{i}", ts, prop, f"user-{rng.randrange(self.users)}")
            out.append((prop.encode(), json.dumps(doc).encode(), "view"))
        bad_at = defaultdict(list)  # three of each kind
        for reason in BAD_REASONS * 3:
            bad_at[rng.randrange(count // 10, count)].append(reason)
        specials = ["user-moved", "user-gone", "user-last", "nobody-1", "nobody-2"]
        # prop-edge: 7 views an hour for 24 hours, then 21 in one hour: 21 x 24 == 3 x 168, so
        # the spike condition holds exactly at the 21st view (views >= 3 x baseline, not >).
        edge_hour = hour_of(end_ms) - 27 * HOUR
        edge = [edge_hour + h * HOUR + MIN + j * 8 * MIN for h in range(24) for j in range(7)]
        edge += [edge_hour + 24 * HOUR + 30_000 + j * 2 * MIN for j in range(21)]
        # prop-hot: 70 investor views in the first week of the span (30 the week before), so
        # the trend holds exactly at the 60th (views >= 2 x last week, not >).
        hot_end = min(week_of(start) + WEEK, end_ms) - MIN
        hot = [start + MIN + k * (hot_end - start - MIN) // 70 for k in range(70)]
        n = 0
        while n < count:
            cur = start + (end_ms - start) * n // count + rng.randrange(1000)
            while edge and edge[0] <= cur:
                doc = self._doc(f"edge-{self.seed}-{len(edge)}", edge.pop(0), "prop-edge",
                                f"user-{rng.randrange(self.users)}")
                out.append((b"prop-edge", json.dumps(doc).encode(), "view"))
            while hot and hot[0] <= cur:
                doc = self._doc(f"hot-{self.seed}-{len(hot)}", hot.pop(0), "prop-hot",
                                rng.choice(investors))
                out.append((b"prop-hot", json.dumps(doc).encode(), "view"))
            progress = n / count
            for reason in bad_at.pop(n, ()):
                out.append((b"prop-7", self._bad(reason, n, cur, now_ms), reason))
            if n % max(count // 25, 60) == 30:  # a burst: 25-45 views of one property, 8 users
                prop = f"prop-{rng.randrange(self.properties)}"
                pool = [f"user-{rng.randrange(self.users)}" for _ in range(8)]
                for j in range(rng.randrange(25, 46)):
                    doc = self._doc(f"burst-{self.seed}-{n}-{j}", cur + j * 5000, prop,
                                    rng.choice(pool))
                    out.append((prop.encode(), json.dumps(doc).encode(), "view"))
            r = rng.random()
            if r < 0.15:  # a few popular properties
                prop = f"prop-{min(int(rng.paretovariate(1.3)) - 1, self.properties - 1)}"
            else:
                prop = f"prop-{rng.randrange(self.properties)}"
            user = f"user-{rng.randrange(self.users)}"
            if r > 0.95:
                user = rng.choice(specials)
            ts = cur
            if progress > 0.2:
                if n % 37 == 5:  # out of order, within the hourly grace
                    ts = cur - rng.randrange(MIN, 12 * MIN)
                elif n % 151 == 7:  # late for the hour, not for the week
                    ts = cur - rng.randrange(75 * MIN, 6 * HOUR)
                elif n % 293 == 11:  # late for both: two weeks back
                    ts = week_of(cur) - WEEK - rng.randrange(HOUR, 3 * DAY)
            event_id = f"ev-{self.seed}-{n}"
            value = json.dumps(self._doc(event_id, ts, prop, user)).encode()
            out.append((prop.encode(), value, "view"))
            if rng.random() < 0.012:  # exact duplicate, now or a few records later
                out.insert(len(out) - rng.randrange(0, 3), (prop.encode(), value, "view"))
            elif rng.random() < 0.003:  # same eventId resent with another timestamp
                doc = self._doc(event_id, ts + rng.randrange(MIN, 30 * MIN), prop, user)
                out.append((prop.encode(), json.dumps(doc).encode(), "view"))
            n += 1
        return out


# --- Kafka and HTTP helpers ----------------------------------------------------------------
async def produce(
    bootstrap: str, topic: str, records: list[tuple], rate: float = 0.0
) -> list[Produced]:
    """Send (key, value, ...) records in order; returns them with their partition and offset."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_batch_size=256 * 1024,
                                max_request_size=2 * 1024 * 1024)  # the broker decides
    await producer.start()
    try:
        futures, started = [], time.monotonic()
        for i, (key, value, *_) in enumerate(records):
            futures.append(await producer.send(topic, value, key=key))
            if rate and i % 100 == 0:
                ahead = i / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Produced(md.partition, md.offset, rec[0], rec[1]) for md, rec in zip(metadata, records)]


async def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list:
    """Every committed record of ``topic`` up to its current end (read_committed)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        assert tps, f"topic {topic} does not exist"
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = []
        async with asyncio.timeout(timeout):
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(r for r in batch
                                   if r.offset < ends[TopicPartition(topic, r.partition)])
        return records
    finally:
        await consumer.stop()


async def get_all(
    base_url: str, paths: list[str], concurrency: int = 6
) -> dict[str, tuple[int, object]]:
    """GET every path (bounded concurrency); path -> (status, JSON body)."""
    semaphore = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async def one(path: str) -> tuple[str, tuple[int, object]]:
            async with semaphore, session.get(base_url + path) as response:
                body = await response.read()
                try:
                    return path, (response.status, json.loads(body))
                except ValueError:
                    return path, (response.status, body.decode(errors="replace"))
        return dict(await asyncio.gather(*(one(p) for p in paths)))


def diff(got: object, want: object) -> str:
    """Only what differs: dict keys, list positions (windows, top properties), else both."""
    if isinstance(got, dict) and isinstance(want, dict):
        keys = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        return "; ".join(f"{k}: {diff(got.get(k), want.get(k))}" for k in keys)
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return "; ".join(f"[{i}] {diff(g, w)}" for i, (g, w) in enumerate(zip(got, want)) if g != w)
    return f"got {got!r:.300} expected {want!r:.300}"


async def eventually_equal(base_url: str, expected: dict[str, object], timeout: float = 60,
                           alternatives: dict[str, list] | None = None) -> list[str]:
    """Poll until every path answers 200 with its expected body (or one of its alternatives);
    returns the remaining mismatches (empty on success)."""
    deadline, todo = time.monotonic() + timeout, dict(expected)
    mismatches: list[str] = []
    while True:
        answers = await get_all(base_url, list(todo))
        mismatches = []
        for path, (status, body) in answers.items():
            allowed = [todo[path], *(alternatives or {}).get(path, [])]
            if status == 200 and body in allowed:
                del todo[path]
            else:
                mismatches.append(f"{path}: {status} {diff(body, todo[path])}")
        if not todo or time.monotonic() > deadline:
            return mismatches
        await asyncio.sleep(1.0)


async def committed_views(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """(records the group has committed on ``topic``, records in ``topic``): a non-transactional
    input topic has no markers, so committed == end offset exactly when everything is done."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await admin.start()
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(tps)
        offsets = await admin.list_consumer_group_offsets(group)
        done = sum(max(offsets[tp].offset, 0) if tp in offsets else 0 for tp in tps)
        return done, sum(ends.values())
    finally:
        await consumer.stop()
        await admin.close()


# --- checks: each returns the differences from the oracle (empty when equal) ----------------
def segment_path(segment: str) -> str:
    return quote(segment, safe="")


def prop_path(prop: str) -> str:
    return quote(prop, safe="")


async def check_hourly(
    base_url: str, exp: Expected, produced: list[Produced], seed: int
) -> list[str]:
    """Every (property, hour) the oracle counted, a sample of zero hours, and three histories.

    Retention (§4) keeps hourly windows 48 h behind stream time: hours starting at least 47 h
    before the partition's stream time must answer exactly; older ones may answer zeros."""
    partition_of = exp.partition_of

    def kept(prop: str, hour: int) -> bool:
        return hour >= exp.stream_time[partition_of[prop]] - 47 * HOUR

    def zeros(prop: str, hour: int) -> dict:
        return {**exp.hour_answer(prop, hour), "views": 0, "uniqueUsers": 0}

    expected, alternatives = {}, {}
    for prop, hour in exp.hourly:
        path = f"/api/properties/{prop_path(prop)}/views?hour={iso(hour)}"
        expected[path] = exp.hour_answer(prop, hour)
        if not kept(prop, hour):
            alternatives[path] = [zeros(prop, hour)]
    rng = random.Random(seed)
    props = sorted(partition_of)
    zero_hours = 0
    while zero_hours < 40:
        prop = rng.choice(props)
        hour = hour_of(exp.stream_time[partition_of[prop]] - rng.randrange(0, 47 * HOUR))
        if (prop, hour) not in exp.hourly and kept(prop, hour):
            expected[f"/api/properties/{prop_path(prop)}/views?hour={iso(hour)}"] = zeros(prop, hour)
            zero_hours += 1
    totals = Counter()
    for (prop, _), (views, _users) in exp.hourly.items():
        totals[prop] += views
    busiest = totals.most_common(1)[0][0]
    for prop in dict.fromkeys(["prop-hot", busiest, next(p for p, _ in exp.spikes)]):
        stream_time = exp.stream_time[partition_of[prop]]
        lo, hi = hour_of(stream_time - 47 * HOUR) + HOUR, hour_of(stream_time) + 2 * HOUR
        path = f"/api/properties/{prop_path(prop)}/views/history?from={iso(lo)}&to={iso(hi)}"

        def history(end: int, prop: str = prop, lo: int = lo) -> dict:
            return {"propertyId": prop,
                    "windows": [exp.hour_answer(prop, h) for h in range(lo, end, HOUR)]}
        expected[path] = history(hi)
        alternatives[path] = [history(hi + HOUR)]  # `to` read as inclusive
    return await eventually_equal(base_url, expected, timeout=30, alternatives=alternatives)


async def check_weekly(base_url: str, exp: Expected) -> list[str]:
    """Every (segment, week) the oracle counted, in both weekStart forms, and empty weeks."""
    expected = {}
    for i, (segment, week) in enumerate(sorted(exp.weekly)):
        day = iso(week)[:10] if i % 2 else iso(week)
        expected[f"/api/segments/{segment_path(segment)}/weeks/{day}"] = \
            exp.week_answer(segment, week)
    some_week = min(week for _, week in exp.weekly)
    expected[f"/api/segments/investor/weeks/{iso(some_week - 3 * WEEK)[:10]}"] = \
        exp.week_answer("investor", some_week - 3 * WEEK)
    expected[f"/api/segments/no-such-segment/weeks/{iso(some_week)[:10]}"] = \
        exp.week_answer("no-such-segment", some_week)
    return await eventually_equal(base_url, expected, timeout=60)


async def check_insights(
    bootstrap: str, topic: str, exp: Expected, exactly_once: bool
) -> list[str]:
    """The set of insightIds on the topic is the oracle's; every copy of an id carries the same
    type, subject and window; with ``exactly_once`` each id appears once, with the views it
    first held at."""
    problems = []
    seen: dict[str, list[dict]] = defaultdict(list)
    for record in await read_topic(bootstrap, topic):
        doc = json.loads(record.value)
        if record.key != doc["insightId"].encode():
            problems.append(f"insight key {record.key!r} is not its insightId {doc['insightId']}")
        seen[doc["insightId"]].append(doc)
    wanted = exp.insights()
    for insight_id in sorted(set(wanted) - set(seen)):
        problems.append(f"missing insight {insight_id}")
    for insight_id in sorted(set(seen) - set(wanted)):
        problems.append(f"unexpected insight {insight_id}: {seen[insight_id][0]}")
    for insight_id, docs in seen.items():
        if exactly_once and len(docs) != 1:
            problems.append(f"insight {insight_id} published {len(docs)} times")
        for doc in docs:
            got = (doc["type"], doc["subject"], doc["windowStart"], doc["windowEnd"])
            if insight_id in wanted and got != wanted[insight_id]:
                problems.append(f"insight {insight_id}: {got} != {wanted[insight_id]}")
    if exactly_once:
        first_views = {f"property_hourly_spike:{pct(p)}:{iso(h)}": (v, None)
                       for (p, h), v in exp.spikes.items()}
        first_views.update({f"segment_property_trend:{pct(s)}:{pct(p)}:{iso(w)}": vp
                            for (s, p, w), vp in exp.trends.items()})
        for insight_id, (views, previous) in first_views.items():
            for doc in seen.get(insight_id, ()):
                metrics = doc["metrics"]
                if metrics.get("views") != views or (previous is not None
                                                     and metrics.get("previousViews") != previous):
                    problems.append(f"insight {insight_id}: metrics {metrics}, expected views "
                                    f"{views} previousViews {previous}")
    return problems


async def check_dlq(bootstrap: str, views_topic: str, exp: Expected, produced: list[Produced],
                    exactly_once: bool) -> tuple[list[str], Counter]:
    """Dead letters: original key and bytes, the five headers, the oracle's reason for each
    origin record, nothing lost or extra; returns (problems, count by reason)."""
    problems, by_reason, origins = [], Counter(), Counter()
    index = {(rec.partition, rec.offset): rec for rec in produced}
    for record in await read_topic(bootstrap, f"{views_topic}.dlq"):
        headers = {name: value.decode() for name, value in record.headers}
        missing = [h for h in DLQ_HEADERS if h not in headers]
        if missing:
            problems.append(f"dead letter at {record.partition}@{record.offset} lacks {missing}")
            continue
        origin = (int(headers["dlq.origin.partition"]), int(headers["dlq.origin.offset"]))
        by_reason[headers["dlq.reason"]] += 1
        origins[origin] += 1
        source = index.get(origin)
        if headers["dlq.origin.topic"] != views_topic or source is None:
            problems.append(f"dead letter from unknown origin {headers}")
            continue
        if (record.key, record.value) != (source.key, source.value):
            problems.append(f"dead letter of {origin}: key/bytes differ from the original")
        if headers["dlq.reason"] != exp.dlq.get(origin):
            problems.append(f"dead letter of {origin}: reason {headers['dlq.reason']}, "
                            f"expected {exp.dlq.get(origin)} ({source.value[:120]!r})")
    for origin in sorted(set(exp.dlq) - set(origins)):
        problems.append(f"record {origin} ({exp.dlq[origin]}) never reached the DLQ")
    if exactly_once:
        problems += [f"record {o} dead-lettered {n} times" for o, n in origins.items() if n > 1]
        if by_reason != Counter(exp.dlq.values()):
            wanted = dict(Counter(exp.dlq.values()))
            problems.append(f"DLQ counts {dict(by_reason)} != oracle {wanted}")
    return problems, by_reason


async def load_profiles(bootstrap: str, base_url: str, workload: Workload) -> list[tuple]:
    """Produce the workload's profiles and wait until the worker serves the last one; checks
    the tombstoned and the moved user. Returns the profile records as produced."""
    profiles = workload.profiles()
    await produce(bootstrap, workload.profiles_topic, profiles)
    deadline = time.monotonic() + 120
    while True:
        answers = await get_all(base_url, ["/api/users/user-last"])
        if answers["/api/users/user-last"][0] == 200:
            break
        assert time.monotonic() < deadline, f"profile user-last never served: {answers}"
        await asyncio.sleep(0.5)
    v1 = next(json.loads(v) for _, v in profiles if v and json.loads(v)["version"] == "1.0")
    answers = await get_all(base_url, ["/api/users/user-last", "/api/users/user-moved",
                                       "/api/users/user-gone", f"/api/users/{v1['userId']}"])
    status, got = answers[f"/api/users/{v1['userId']}"]
    assert status == 200 and {k: got.get(k) for k in v1} == v1, (got, v1)
    status, moved = answers["/api/users/user-moved"]
    assert status == 200 and moved["segment"] == "renter" and moved["version"] == "2.0", moved
    assert moved["profile"]["lastName"] == "user-moved", moved
    assert answers["/api/users/user-gone"][0] == 404, answers["/api/users/user-gone"]
    last = answers["/api/users/user-last"][1]
    assert {k: last[k] for k in ("userId", "segment", "version")} == \
        {"userId": "user-last", "segment": "developer", "version": "2.0"}, last
    return profiles


class TransactionProbe:
    """Sees whether a topic has a transaction open right now: its high watermark (what a
    read_uncommitted consumer sees) is past its last stable offset (read_committed)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self._consumers = [AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                            isolation_level=level)
                           for level in ("read_uncommitted", "read_committed")]

    async def __aenter__(self) -> TransactionProbe:
        for consumer in self._consumers:
            await consumer.start()
        await self._consumers[0]._client.force_metadata_update()  # noqa: SLF001
        partitions = self._consumers[0].partitions_for_topic(self.topic) or ()
        self._tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        assert self._tps, f"topic {self.topic} does not exist"
        return self

    async def __aexit__(self, *exc: object) -> None:
        for consumer in self._consumers:
            await consumer.stop()

    async def open(self) -> bool:
        high, stable = [await c.end_offsets(self._tps) for c in self._consumers]
        return any(high[tp] > stable[tp] for tp in self._tps)
