"""Preload: the seeded workload for a fresh run, and the answers a correct pipeline must give.

Profiles go first, then the views, with event times spread evenly over the last few days and
ending shortly before now. Every record acked is fed to the independent oracle of the tests
(tests/support/oracle.py) with the partition and offset the broker gave it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from app.generator import SEGMENTS, Workload, produce
from app.settings import Settings
from app.windows import HOUR_MS
from tests.support.oracle import Oracle


def segment_names(count: int) -> tuple[str, ...]:
    extra = tuple(f"segment-{i}" for i in range(len(SEGMENTS) + 1, count + 1))
    return (SEGMENTS + extra)[:count]


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
    workload = Workload(seed=seed, users=users, properties=properties, segments=segment_names(segments))
    oracle = Oracle(now_ms=int(time.time() * 1000))
    kwargs = settings.kafka_client_kwargs()
    started = time.monotonic()
    profile_count = await produce(
        settings.profiles_topic,
        workload.profiles(),
        kwargs,
        on_acked=lambda _, record: oracle.add_profile(record[0], record[1]),
        on_progress=lambda n, s: on_progress("profiles", n, s),
    )
    end_ms = int((time.time() - end_before_now_s) * 1000)
    span_ms = int(days * 24 * HOUR_MS)
    start_ms = end_ms - span_ms
    view_count = await produce(
        settings.views_topic,
        workload.views(views, start_ms, span_ms / max(views, 1)),
        kwargs,
        on_acked=lambda ack, record: oracle.add_view(ack.partition, ack.offset, record[0], record[1]),
        on_progress=lambda n, s: on_progress("views", n, s),
    )
    return Preloaded(
        profiles=profile_count,
        views=view_count,
        seconds=time.monotonic() - started,
        first_event_ms=start_ms,
        last_event_ms=max(oracle.stream_time.values(), default=start_ms),
        oracle=oracle,
    )
