"""Seeded synthetic input: user profiles (v1 and v2) and property views, with bursts, and on
request duplicates, late views, bad records and the edge cases the tests rely on.

    python -m app.generator --rate 200                 # live: event time = now, until Ctrl-C
    python -m app.generator --views 100000 --rate 0    # a finite backfill, as fast as possible

``make demo``, the benchmark and the tests all draw their input from ``Workload``. None of them
takes expected answers from here: the tests' oracle recomputes them from the records produced.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.structs import RecordMetadata

from app.settings_errors import settings_or_exit
from app.windows import DAY_MS, HOUR_MS, WEEK_MS, hour_start, iso_ms, week_start

log = logging.getLogger("generator")

MIN_MS = 60_000
SEGMENTS = ("investor", "first_time_buyer", "renter", "agent", "developer")
BAD_KINDS = ("malformed_json", "missing_field", "bad_type", "bad_timestamp",
             "unsupported_version", "oversized", "future_timestamp")
# Users with a story (edge cases): moved to another segment, deleted, produced last, and two
# that never had a profile.
SPECIAL_USERS = ("user-moved", "user-gone", "user-last", "nobody-1", "nobody-2")


class Record(NamedTuple):
    key: bytes | None
    value: bytes | None
    intended: str = "view"  # "view", "profile", "delete", or the dead-letter reason it is made for


@dataclass
class Workload:
    """A deterministic stream of records for one seed.

    Views go to ``properties`` properties (30 % of them to a few popular ones) from ``users``
    users, in event-time order; every ``burst_every`` views, a burst of 25-60 views of one
    property by 8 users comes between two of them (a spike). On request:

    - ``duplicate_rate``: a view sent again, byte for byte, a few records later (four in five)
      or with the same eventId and a later timestamp;
    - ``bad_rate``: a record of each kind in ``BAD_KINDS`` in turn, before a view;
    - ``disorder``: after the first fifth, views out of order within the hourly grace, late
      for their hour, and late for their week too;
    - ``edge_cases``: the users of ``SPECIAL_USERS``; ``+02:00`` timestamps and session ids;
      ``prop-edge``, 7 views an hour for 24 hours and then 21 in one hour, so the spike rule
      (views >= 3 x the mean of the 24 hours before) holds exactly at the 21st view; and
      ``prop-hot``, 30 investor views in the week before the span and 70 in its first week,
      so the trend rule (views >= 2 x last week) holds exactly at the 60th.
    """

    seed: int = 7
    users: int = 5000
    properties: int = 2000
    segments: tuple[str, ...] = SEGMENTS
    profile_share: float = 0.9  # users with a profile; the rest join as "unknown"
    burst_every: int = 2000  # 0: no bursts
    jitter_ms: int = 0  # each view up to this much before its place in the stream
    duplicate_rate: float = 0.0
    bad_rate: float = 0.0
    disorder: bool = False
    edge_cases: bool = False
    segment_of: dict[str, str] = field(init=False, repr=False)  # after every profile record
    _profiles: list[Record] = field(init=False, repr=False)

    @classmethod
    def every_case(cls, seed: int, **options: object) -> Workload:
        """A small workload with every kind of input the tests judge (options override)."""
        defaults = {"users": 400, "properties": 300, "burst_every": 120, "jitter_ms": 1000,
                    "duplicate_rate": 0.015, "bad_rate": 0.007, "disorder": True,
                    "edge_cases": True}
        return cls(seed, **{**defaults, **options})

    def __post_init__(self) -> None:
        rng = random.Random(f"{self.seed}:profiles")
        self._profiles = []
        for i in range(self.users):
            if rng.random() < self.profile_share:
                version = rng.choice(("1.0", "2.0"))
                self._profiles.append(self.profile(f"user-{i}", rng.choice(self.segments), version))
        if self.edge_cases:
            self._profiles += [
                self.profile("user-moved", "investor", "1.0"),
                self.profile("user-gone", "agent", "2.0"),
                self.profile("user-moved", "renter", "2.0"),  # v1 -> v2, another segment
                Record(b"user-gone", None, "delete"),  # its views become "unknown"
                self.profile("user-last", "developer", "2.0"),
            ]
        self.segment_of = {}
        for key, value, _ in self._profiles:
            if value is None:
                self.segment_of.pop(key.decode(), None)
            else:
                self.segment_of[key.decode()] = orjson.loads(value)["segment"]

    def profiles(self) -> list[Record]:
        """Every profile record in produce order (with edge cases, ``user-last`` is last)."""
        return list(self._profiles)

    @staticmethod
    def profile(user: str, segment: str, version: str) -> Record:
        doc = {"userId": user, "segment": segment, "version": version,
               "updatedAt": "2026-11-01T09:00:00Z", "email": f"{user}@example.test"}
        if version == "2.0":
            doc["profile"] = {"firstName": "F", "lastName": user, "company": "Acme"}
        return Record(user.encode(), orjson.dumps(doc), "profile")

    @staticmethod
    def view(event_id: str, ts_ms: int, property_id: str, user_id: str,
             session: str | None = None, local: bool = False) -> Record:
        """One view; ``local``: the timestamp written with a +02:00 offset (the same instant)."""
        stamp = iso_ms(ts_ms)
        if local:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ts_ms, hours=2)
            stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+02:00"
        doc = {"eventId": event_id, "eventType": "property.viewed", "version": "1.0",
               "timestamp": stamp, "propertyId": property_id, "userId": user_id,
               "source": "web", "durationMs": 5200}
        if session is not None:
            doc["sessionId"] = session
        return Record(property_id.encode(), orjson.dumps(doc))

    def views(self, count: int | None, start_ms: int, step_ms: float, *,
              now_ms: int | None = None, id_prefix: str = "ev") -> Iterator[Record]:
        """``count`` views (None: endless), the n-th at ``start_ms + n * step_ms`` less up to
        ``jitter_ms``, with what the options add. Event ids are ``<id_prefix>-<seed>-<n>``:
        give each call on one topic its own prefix. ``now_ms`` (default: the clock) places the
        future timestamps of bad records."""
        if count is None and (self.disorder or self.edge_cases):
            raise ValueError("late views and edge cases need a finite count")
        rng = random.Random(f"{self.seed}:{id_prefix}")
        ids = f"{id_prefix}-{self.seed}"
        now = int(time.time() * 1000) if now_ms is None else now_ms
        scheduled: list[tuple[int, Record]] = []
        if self.edge_cases:
            end = start_ms + int(count * step_ms)
            yield from self._prelude(rng, ids, start_ms, count)
            scheduled = sorted(self._edge_views(rng, ids, start_ms, end), reverse=True)
        held: list[tuple[int, Record]] = []  # duplicates due a few views later
        bad = 0
        n = 0
        while count is None or n < count:
            cur = start_ms + int(n * step_ms)
            if self.jitter_ms:
                cur -= rng.randrange(self.jitter_ms)
            while scheduled and scheduled[-1][0] <= cur:
                yield scheduled.pop()[1]
            if self.bad_rate and rng.random() < self.bad_rate:
                yield self._bad(BAD_KINDS[bad % len(BAD_KINDS)], f"{ids}-bad{bad}", cur, now)
                bad += 1
            r = rng.random()
            if r < 0.3:  # a few popular properties
                prop = f"prop-{min(int(rng.paretovariate(1.2)) - 1, self.properties - 1)}"
            else:
                prop = f"prop-{rng.randrange(self.properties)}"
            user = f"user-{rng.randrange(self.users)}"
            ts = cur
            if self.edge_cases and r > 0.95:
                user = rng.choice(SPECIAL_USERS)
            if self.disorder and n >= count // 5:
                ts = self._disorder(rng, n, cur)
            record = self._view(rng, f"{ids}-{n}", ts, prop, user)
            yield record
            if self.duplicate_rate and rng.random() < self.duplicate_rate:
                if rng.random() < 0.8:  # the same bytes, now or a few views later
                    held.append((n + rng.randrange(3), record))
                else:  # the same eventId with another timestamp
                    later = ts + rng.randrange(MIN_MS, 30 * MIN_MS)
                    yield self._view(rng, f"{ids}-{n}", later, prop, user)
            while held and held[0][0] <= n:
                yield held.pop(0)[1]
            if self.burst_every and n % self.burst_every == self.burst_every - 1:
                yield from self._burst(rng, f"{ids}-{n}b", cur, step_ms)
            n += 1
        yield from (record for _, record in held)
        yield from (record for _, record in reversed(scheduled))

    def _burst(self, rng: random.Random, ids: str, cur: int, step_ms: float) -> Iterator[Record]:
        """25-60 views of one property by 8 users, all before the next view's time."""
        prop = f"prop-{rng.randrange(self.properties)}"
        pool = [f"user-{rng.randrange(self.users)}" for _ in range(8)]
        size = rng.randrange(25, 61)
        for j in range(size):
            yield self.view(f"{ids}{j}", cur + int(j * step_ms / size), prop, rng.choice(pool))

    def _view(self, rng: random.Random, event_id: str, ts: int, prop: str, user: str) -> Record:
        if not self.edge_cases:
            return self.view(event_id, ts, prop, user)
        return self.view(event_id, ts, prop, user, session=f"s-{rng.randrange(10**6)}",
                         local=rng.random() < 0.05)

    @staticmethod
    def _disorder(rng: random.Random, n: int, cur: int) -> int:
        if n % 37 == 5:  # out of order, within the hourly grace
            return cur - rng.randrange(MIN_MS, 12 * MIN_MS)
        if n % 151 == 7:  # late for the hour, not for the week
            return cur - rng.randrange(75 * MIN_MS, 6 * HOUR_MS)
        if n % 293 == 11:  # late for both: two weeks back
            return week_start(cur) - WEEK_MS - rng.randrange(HOUR_MS, 3 * DAY_MS)
        return cur

    def _prelude(self, rng: random.Random, ids: str, start: int, count: int) -> Iterator[Record]:
        """Views in the week before the span: prop-hot's baseline for investors, and others."""
        week = week_start(start) - WEEK_MS
        investors = sorted(u for u, s in self.segment_of.items() if s == "investor")
        for i in range(30):
            yield self.view(f"{ids}-pre{i}", week + 3 * DAY_MS + i * 7 * MIN_MS, "prop-hot",
                            rng.choice(investors))
        others = count // 20
        for i in range(others):
            ts = week + 4 * DAY_MS + i * (2 * DAY_MS // others)
            yield self.view(f"{ids}-pre-x{i}", ts, f"prop-{rng.randrange(12)}",
                            f"user-{rng.randrange(self.users)}")

    def _edge_views(self, rng: random.Random, ids: str, start: int, end: int) -> Iterator[tuple]:
        """(event time, view) of prop-edge and prop-hot, merged into the stream by time."""
        edge_hour = hour_start(end) - 27 * HOUR_MS
        edge = [edge_hour + h * HOUR_MS + MIN_MS + j * 8 * MIN_MS for h in range(24) for j in range(7)]
        edge += [edge_hour + 24 * HOUR_MS + 30_000 + j * 2 * MIN_MS for j in range(21)]
        for i, ts in enumerate(edge):
            user = f"user-{rng.randrange(self.users)}"
            yield ts, self.view(f"{ids}-edge{i}", ts, "prop-edge", user)
        investors = sorted(u for u, s in self.segment_of.items() if s == "investor")
        hot_end = min(week_start(start) + WEEK_MS, end) - MIN_MS
        for k in range(70):
            ts = start + MIN_MS + k * (hot_end - start - MIN_MS) // 70
            yield ts, self.view(f"{ids}-hot{k}", ts, "prop-hot", rng.choice(investors))

    @staticmethod
    def property_event(event_id: str, kind: str, ts_ms: int, property_id: str, **data: object) -> Record:
        """One ``property.events`` record (``kind``: created, updated or rented)."""
        doc = {"eventId": event_id, "eventType": f"property.{kind}", "version": "1.0",
               "timestamp": iso_ms(ts_ms), "propertyId": property_id, "data": data}
        return Record(property_id.encode(), orjson.dumps(doc), "property")

    def property_events(self, start_ms: int, span_ms: int, *, id_prefix: str = "pe") -> list[Record]:
        """The properties' lives over ``[start_ms, start_ms + span_ms]``, in time order: each
        property created at the start; a fifth of them repriced later; the popular prop-1 and
        prop-3 and one in twenty others rented a third of the way in; prop-3 and a third of
        the others rented relisted two thirds of the way in (prop-1 stays rented). With ``bad_rate``, also events the
        aggregate must refuse (``invalid_transition``) and resent duplicates."""
        rng = random.Random(f"{self.seed}:{id_prefix}")
        ids = f"{id_prefix}-{self.seed}"
        cities = ("Lyon", "Paris", "Lille", "Nantes", "Bordeaux")
        timed: list[tuple[int, int, Record]] = []
        n = 0

        def add(ts: int, record: Record) -> None:
            nonlocal n
            timed.append((ts, n, record))
            n += 1

        for i in range(self.properties):
            prop = f"prop-{i}"
            price = rng.randrange(800, 4000)
            add(start_ms + i, self.property_event(
                f"{ids}-{i}-c", "created", start_ms + i, prop, title=f"Flat {i}",
                city=rng.choice(cities), price=price, bedrooms=rng.randrange(0, 6)))
            t = start_ms + self.properties + 1
            if rng.random() < 0.2:
                t += rng.randrange(max(1, span_ms // 3))
                add(t, self.property_event(f"{ids}-{i}-u", "updated", t, prop,
                                           price=price - rng.randrange(10, 200)))
            if i in (1, 3) or rng.random() < 0.05:
                t = max(t, start_ms + span_ms // 3)
                add(t, self.property_event(f"{ids}-{i}-r", "rented", t, prop, rent=price,
                                           tenantId=f"tenant-{rng.randrange(10**6)}"))
                if i == 3 or (i != 1 and rng.random() < 0.33):
                    t = max(t, start_ms + 2 * span_ms // 3)
                    add(t, self.property_event(f"{ids}-{i}-l", "updated", t, prop,
                                               status="listed", price=price + 50))
        if self.bad_rate:
            end = start_ms + span_ms
            refused = [
                self.property_event(f"{ids}-x1", "created", end, "prop-0", title="again",
                                    city="Lyon", price=1),
                self.property_event(f"{ids}-x2", "updated", end, "prop-never", price=1),
                self.property_event(f"{ids}-x3", "updated", end, "prop-2", status="rented"),
            ]
            for record in refused:
                add(end, record._replace(intended="invalid_transition"))
            add(end, min(timed)[2]._replace(intended="duplicate"))
        return [record for _, _, record in sorted(timed)]

    def _bad(self, kind: str, event_id: str, ts: int, now: int) -> Record:
        """A view of prop-7 made to be rejected for ``kind``."""
        doc = orjson.loads(self.view(event_id, ts, "prop-7", "user-1").value)
        if kind == "malformed_json":
            return Record(b"prop-7", orjson.dumps(doc)[:-9], kind)
        if kind == "missing_field":
            del doc["userId"]
        elif kind == "bad_type":
            doc["userId"] = 12345
        elif kind == "bad_timestamp":
            doc["timestamp"] = ("yesterday", "2026-11-20T14:03:07", "2026-02-30T10:00:00Z")[ts % 3]
        elif kind == "unsupported_version":
            doc["version"] = "3.0"
        elif kind == "oversized":
            doc["notes"] = "x" * (70 * 1024)
        elif kind == "future_timestamp":
            doc["timestamp"] = iso_ms(max(now, ts) + 2 * HOUR_MS)
        return Record(b"prop-7", orjson.dumps(doc), kind)


async def _send(producer: AIOKafkaProducer, topic: str, record: tuple) -> asyncio.Future:
    """Hand one record to the producer, waiting for room as long as it takes.

    ``send`` raises KafkaTimeoutError when the producer's buffer for the partition stays full
    for ``request_timeout_ms`` (the brokers take nothing: two of three down). The record was
    not taken then, so handing it over again neither loses nor duplicates it, and keeps the
    order (the records after it wait for it)."""
    while True:
        try:
            return await producer.send(topic, record[1], key=record[0])
        except KafkaTimeoutError:
            log.debug("producer to %s: buffer still full; trying the record again", topic)


class StallLog:
    """Says when a producer's records have waited ``warn_after_s`` for their acks, and when
    they flow again: what a producer shows while the brokers cannot take its writes."""

    def __init__(self, topic: str, warn_after_s: float) -> None:
        self._topic = topic
        self._warn_after_s = warn_after_s
        self._acked = 0
        self._since: float | None = None  # when an ack last arrived (or the wait began)
        self.stalled_at: float | None = None

    def observe(self, now: float, acked: int, unacked: int) -> None:
        """At ``now``, ``acked`` records have had their ack so far and ``unacked`` wait."""
        if unacked == 0 or acked > self._acked:  # acks arrive
            if self.stalled_at is not None:
                log.warning("producer to %s resumed after %.0fs", self._topic, now - self.stalled_at)
                self.stalled_at = None
            self._since = now
        elif self._since is None:
            self._since = now
        elif self.stalled_at is None and now - self._since >= self._warn_after_s:
            self.stalled_at = self._since
            log.warning(
                "producer to %s stalled: %d records without an ack for %.0fs (brokers "
                "unreachable, or fewer replicas in sync than min.insync.replicas); still "
                "retrying, nothing is dropped",
                self._topic, unacked, now - self._since,
            )
        self._acked = acked


async def produce(
    topic: str,
    records: Iterable[tuple],
    client_kwargs: dict,
    *,
    rate: float = 0.0,
    on_acked: Callable[[RecordMetadata, tuple], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
    stall_warn_s: float = 10.0,
) -> int:
    """Send (key, value, ...) records to ``topic`` in order (default partitioner, acks=all,
    idempotent: each partition keeps the order they were sent in) at up to ``rate`` a second
    (0: as fast as the broker takes them), and wait for every ack. ``on_acked`` sees each
    record with its partition and offset, in send order. Returns the count.

    The idempotent producer retries a batch the brokers do not take (two of three brokers
    down: fewer replicas in sync than ``min.insync.replicas``) for as long as it takes, in
    order and without duplicates; sending then waits. Acks stalled for ``stall_warn_s`` are
    logged, and so is their return (``StallLog``)."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=256 * 1024, enable_idempotence=True, **client_kwargs
    )
    await producer.start()
    sent, started, reported = 0, time.monotonic(), 0.0
    pending: list[tuple[asyncio.Future, tuple]] = []
    stalls = StallLog(topic, stall_warn_s)
    acked = [0]

    def count_ack(_: asyncio.Future) -> None:
        acked[0] += 1

    async def watch_acks() -> None:
        while True:
            await asyncio.sleep(1.0)
            stalls.observe(time.monotonic(), acked[0], sent - acked[0])

    watcher = asyncio.create_task(watch_acks())

    async def settle() -> None:
        acks = await asyncio.gather(*(future for future, _ in pending))
        if on_acked is not None:
            for metadata, (_, record) in zip(acks, pending, strict=True):
                on_acked(metadata, record)
        pending.clear()

    try:
        for record in records:
            future = await _send(producer, topic, record)
            future.add_done_callback(count_ack)
            pending.append((future, record))
            sent += 1
            now = time.monotonic()
            if rate and (ahead := sent / rate - (now - started)) > 0:
                await asyncio.sleep(ahead)
            if len(pending) >= 10_000:
                await settle()
            if on_progress is not None and now - reported >= 0.5:
                on_progress(sent, now - started)
                reported = now
        await settle()
    finally:
        watcher.cancel()
        await producer.stop()
    if on_progress is not None:
        on_progress(sent, time.monotonic() - started)
    return sent


async def _main(args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    workload = Workload(seed=args.seed, users=args.users, properties=args.properties,
                        burst_every=args.spike_every, duplicate_rate=args.duplicate_rate,
                        bad_rate=args.bad_rate)
    live = replace(workload, jitter_ms=2000)  # event time follows the clock, a little out of order
    kwargs = settings.kafka_client_kwargs()

    def progress(what: str, every_s: float = 10.0) -> Callable[[int, float], None]:
        last = [0.0]

        def report(n: int, seconds: float) -> None:
            if seconds - last[0] >= every_s:
                last[0] = seconds
                log.info("produced %d %s (%.0f/s)", n, what, n / seconds)
        return report

    sent = await produce(settings.profiles_topic, workload.profiles(), kwargs)
    log.info("produced %d profiles to %s", sent, settings.profiles_topic)
    now = int(time.time() * 1000)
    # The properties' lives over the span the views cover, before the views: a view finds
    # the property as it was at the view's time (docs/behaviour.md).
    span = (args.history_hours if args.views is None else args.backfill_hours) * HOUR_MS
    events = workload.property_events(now - span, span, id_prefix=f"pe{now}")
    sent = await produce(settings.property_events_topic, events, kwargs)
    log.info("produced %d property events to %s", sent, settings.property_events_topic)
    if args.views is None:
        if args.history_views:
            # A day of history first, so baselines and sparklines have something to show.
            span = args.history_hours * HOUR_MS
            history = workload.views(args.history_views, now - span, span / args.history_views,
                                     id_prefix=f"h{now}")
            sent = await produce(settings.views_topic, history, kwargs, on_progress=progress("views"))
            log.info("produced %d views of history (%d h)", sent, args.history_hours)
        start = int(time.time() * 1000)
        views = live.views(None, start, 1000 / args.rate, id_prefix=f"l{start}")
    else:
        start = now - args.backfill_hours * HOUR_MS
        step = args.backfill_hours * HOUR_MS / max(args.views, 1)
        views = workload.views(args.views, start, step, id_prefix=f"b{start}")
    sent = await produce(settings.views_topic, views, kwargs, rate=args.rate,
                         on_progress=progress("views"))
    log.info("produced %d views to %s", sent, settings.views_topic)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.generator", description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--properties", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="views per second; 0 = unthrottled")
    parser.add_argument("--views", type=int, default=None, help="finite backfill of this many views")
    parser.add_argument("--backfill-hours", type=int, default=24)
    parser.add_argument("--spike-every", type=int, default=2000, help="views between bursts; 0 = none")
    parser.add_argument("--duplicate-rate", type=float, default=0.0, help="share of views sent twice")
    parser.add_argument("--bad-rate", type=float, default=0.0,
                        help="share of views preceded by a record the product must dead-letter")
    parser.add_argument(
        "--history-views", type=int, default=20000, help="live mode: views of history first"
    )
    parser.add_argument("--history-hours", type=int, default=24)
    args = parser.parse_args(argv)
    if args.views is None and args.rate <= 0:
        parser.error("live mode (no --views) needs --rate > 0")
    if args.views is not None and args.views < 0:
        parser.error("--views must be >= 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        return asyncio.run(_main(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
