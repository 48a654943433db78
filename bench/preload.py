"""Preload: the product's topics for a fresh run, the seeded workload, and the expected answers.

Profiles go first, then the views, with event times spread evenly over the last few days and
ending shortly before now. While producing, ``Oracle`` counts what a correct pipeline must
answer, from the same pure window functions the product uses.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from app.generator import SEGMENTS, Record, Workload
from app.settings import Settings
from app.topics import ensure_topics
from app.windows import HOUR_MS, hour_start, parse_iso, week_start

UNKNOWN_SEGMENT = "unknown"


def segment_names(count: int) -> tuple[str, ...]:
    extra = tuple(f"segment-{i}" for i in range(len(SEGMENTS) + 1, count + 1))
    return (SEGMENTS + extra)[:count]


@dataclass
class Oracle:
    """Expected hourly and weekly answers of an uninterrupted run over the preloaded input.

    The workload has no duplicates, no bad records and views in event-time order, so every
    view is accepted and counts in its hour and its week.
    """

    segment_of_user: dict[str, str] = field(default_factory=dict)
    hourly_views: Counter = field(default_factory=Counter)
    hourly_users: dict[tuple[str, int], set] = field(default_factory=dict)
    weekly_views: Counter = field(default_factory=Counter)
    weekly_users: dict[tuple[str, int], set] = field(default_factory=dict)
    weekly_props: dict[tuple[str, int], Counter] = field(default_factory=dict)
    last_ts: int = 0

    def add_profile(self, value: bytes) -> None:
        doc = orjson.loads(value)
        self.segment_of_user[doc["userId"]] = doc["segment"]

    def add_view(self, value: bytes) -> None:
        doc = orjson.loads(value)
        ts = parse_iso(doc["timestamp"])
        prop, user = doc["propertyId"], doc["userId"]
        hour = hour_start(ts)
        self.hourly_views[(prop, hour)] += 1
        self.hourly_users.setdefault((prop, hour), set()).add(user)
        segment = self.segment_of_user.get(user, UNKNOWN_SEGMENT)
        week = week_start(ts)
        self.weekly_views[(segment, week)] += 1
        self.weekly_users.setdefault((segment, week), set()).add(user)
        self.weekly_props.setdefault((segment, week), Counter())[prop] += 1
        self.last_ts = max(self.last_ts, ts)

    def hour(self, prop: str, hour: int) -> tuple[int, int]:
        return self.hourly_views[(prop, hour)], len(self.hourly_users.get((prop, hour), ()))

    def week(self, segment: str, week: int) -> dict:
        props = self.weekly_props.get((segment, week), Counter())
        top = sorted(props.items(), key=lambda item: (-item[1], item[0]))[:10]
        return {
            "views": self.weekly_views[(segment, week)],
            "uniqueUsers": len(self.weekly_users.get((segment, week), ())),
            "topProperties": [[p, v] for p, v in top],
        }

    def sample_hours(self, count: int, retention_ms: int, seed: int) -> list[tuple[str, int]]:
        """(property, hour) pairs the product still keeps: the busiest few, random ones, one empty."""
        oldest = hour_start(self.last_ts - retention_ms) + HOUR_MS  # clear of the retention edge
        newest = hour_start(self.last_ts) - HOUR_MS  # clear of the hour live views may go to
        live = sorted(k for k in self.hourly_views if oldest <= k[1] <= newest)
        if not live:
            return []
        rng = random.Random(seed)
        busiest = sorted(live, key=lambda k: (-self.hourly_views[k], k))[: max(count // 4, 1)]
        rest = [k for k in live if k not in set(busiest)]
        picked = busiest + rng.sample(rest, min(count - len(busiest) - 1, len(rest)))
        empty_hour = hour_start(self.last_ts)
        picked.append(("prop-never-viewed", empty_hour))
        return picked

    def weeks(self) -> list[tuple[str, int]]:
        return sorted(self.weekly_views)


async def create_topics(settings: Settings) -> list[str]:
    return await ensure_topics(settings)


async def produce(
    records: Iterable[Record],
    client_kwargs: dict,
    total: int,
    on_record: Callable[[Record], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
) -> tuple[int, float]:
    """Send keyed records as fast as the broker takes them (acks=all); returns (count, seconds)."""
    producer = AIOKafkaProducer(
        acks="all",
        linger_ms=20,
        max_batch_size=256 * 1024,
        enable_idempotence=True,
        **client_kwargs,
    )
    await producer.start()
    started = time.monotonic()
    sent = 0
    last_report = 0.0
    try:
        pending = []
        for record in records:
            pending.append(await producer.send(record.topic, record.value, key=record.key))
            if on_record is not None:
                on_record(record)
            sent += 1
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending = []
            now = time.monotonic()
            if on_progress is not None and now - last_report >= 0.5:
                on_progress(sent, now - started)
                last_report = now
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    if on_progress is not None:
        on_progress(sent, time.monotonic() - started)
    return sent, time.monotonic() - started


@dataclass
class Preloaded:
    profiles: int
    views: int
    seconds: float
    first_event_ms: int
    last_event_ms: int
    oracle: Oracle


async def preload(
    settings: Settings,
    *,
    seed: int,
    views: int,
    users: int,
    properties: int,
    segments: int,
    days: float,
    end_before_now_s: float,
    on_progress: Callable[[str, int, float], None],
) -> Preloaded:
    workload = Workload(
        seed=seed,
        users=users,
        properties=properties,
        segments=segment_names(segments),
        views_topic=settings.views_topic,
        profiles_topic=settings.profiles_topic,
    )
    oracle = Oracle()
    kwargs = settings.kafka_client_kwargs()
    started = time.monotonic()
    profile_count, _ = await produce(
        workload.profiles(),
        kwargs,
        users,
        on_record=lambda r: oracle.add_profile(r.value),
        on_progress=lambda n, s: on_progress("profiles", n, s),
    )
    end_ms = int((time.time() - end_before_now_s) * 1000)
    span_ms = int(days * 24 * HOUR_MS)
    start_ms = end_ms - span_ms
    view_count, _ = await produce(
        workload.views(views, start_ms, span_ms / max(views, 1)),
        kwargs,
        views,
        on_record=lambda r: oracle.add_view(r.value),
        on_progress=lambda n, s: on_progress("views", n, s),
    )
    return Preloaded(
        profiles=profile_count,
        views=view_count,
        seconds=time.monotonic() - started,
        first_event_ms=start_ms,
        last_event_ms=oracle.last_ts,
        oracle=oracle,
    )
