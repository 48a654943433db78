"""Seeded synthetic workload: profiles (v1 and v2) and property views, with spikes, weekly
trends, duplicates, late and bad records on request.

    python -m app.generator --rate 200            # live: event time = now, until Ctrl-C
    python -m app.generator --views 100000 --rate 0   # a finite backfill, as fast as possible

Tests and the benchmark build ``Workload`` directly and recompute expected answers from it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaProducer

from app.settings import Settings
from app.windows import HOUR_MS, iso_ms

log = logging.getLogger("generator")

SEGMENTS = ("investor", "first_time_buyer", "renter", "agent", "developer")


@dataclass(slots=True, frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes | None


@dataclass(slots=True)
class Workload:
    """A deterministic stream of records for one seed."""

    seed: int = 7
    users: int = 5000
    properties: int = 2000
    segments: tuple[str, ...] = SEGMENTS
    views_topic: str = "property.views"
    profiles_topic: str = "user.profiles"
    profile_share: float = 0.9  # users with a profile; the rest join as "unknown"
    duplicate_rate: float = 0.0
    bad_rate: float = 0.0
    spike_every: int = 2000  # one burst of views on a random property every N views
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def user(self, i: int) -> str:
        return f"user-{i}"

    def prop(self, i: int) -> str:
        return f"prop-{i}"

    def profiles(self) -> Iterator[Record]:
        rng = self._rng
        for i in range(self.users):
            if rng.random() >= self.profile_share:
                continue
            doc = {
                "userId": self.user(i),
                "segment": rng.choice(self.segments),
                "version": "1.0",
                "updatedAt": "2026-11-01T09:00:00Z",
            }
            if rng.random() < 0.5:
                doc["version"] = "2.0"
                doc["profile"] = {"firstName": f"F{i}", "lastName": f"L{i}", "company": "Acme"}
            yield Record(self.profiles_topic, self.user(i).encode(), orjson.dumps(doc))

    def views(
        self,
        count: int | None,
        start_ms: int,
        step_ms: float,
        jitter_ms: int = 0,
        id_prefix: str = "ev",
    ) -> Iterator[Record]:
        """``count`` views (None: endless) with event times from ``start_ms``, ``step_ms`` apart.

        Event ids are ``<id_prefix>-<seed>-<n>``: give each call on one topic its own prefix.
        """
        rng = self._rng
        n = 0
        burst: list[int] = []
        while count is None or n < count:
            ts = int(start_ms + n * step_ms) - (rng.randrange(jitter_ms) if jitter_ms else 0)
            if n and self.spike_every and n % self.spike_every == 0:
                burst = [rng.randrange(self.properties)] * rng.randrange(30, 80)
            if burst:
                prop = burst.pop()
            elif rng.random() < 0.3:  # a few popular properties
                prop = min(int(rng.paretovariate(1.2)) - 1, self.properties - 1)
            else:
                prop = rng.randrange(self.properties)
            user = rng.randrange(self.users)
            record = self.view_record(f"{id_prefix}-{self.seed}-{n}", ts, self.prop(prop), self.user(user))
            if self.bad_rate and rng.random() < self.bad_rate:
                record = Record(record.topic, record.key, b"{not json")
            yield record
            if self.duplicate_rate and rng.random() < self.duplicate_rate:
                yield record
            n += 1

    def view_record(self, event_id: str, ts_ms: int, property_id: str, user_id: str) -> Record:
        doc = {
            "eventId": event_id,
            "eventType": "property.viewed",
            "version": "1.0",
            "timestamp": iso_ms(ts_ms),
            "propertyId": property_id,
            "userId": user_id,
            "source": "web",
            "durationMs": 5200,
        }
        return Record(self.views_topic, property_id.encode(), orjson.dumps(doc))


async def produce(
    records: Iterator[Record] | list[Record],
    client_kwargs: dict,
    rate: float = 0.0,
    progress_every: int = 0,
) -> int:
    """Send records (keyed, default partitioner) and wait for all acks; returns the count."""
    producer = AIOKafkaProducer(
        acks="all", linger_ms=20, max_batch_size=256 * 1024, enable_idempotence=True, **client_kwargs
    )
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        pending = []
        for record in records:
            pending.append(await producer.send(record.topic, record.value, key=record.key))
            sent += 1
            if rate:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            if len(pending) >= 10000:
                await asyncio.gather(*pending)
                pending = []
            if progress_every and sent % progress_every == 0:
                log.info("produced %d records (%.0f/s)", sent, sent / (time.monotonic() - started))
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _main(args: argparse.Namespace) -> int:
    settings = Settings()
    workload = Workload(
        seed=args.seed,
        users=args.users,
        properties=args.properties,
        views_topic=settings.views_topic,
        profiles_topic=settings.profiles_topic,
        spike_every=args.spike_every,
    )
    kwargs = settings.kafka_client_kwargs()
    profiles = await produce(workload.profiles(), kwargs)
    log.info("produced %d profiles to %s", profiles, settings.profiles_topic)
    if args.views is None:
        if args.history_views:
            # A day of history first, so baselines and sparklines have something to show.
            now = int(time.time() * 1000)
            span = args.history_hours * HOUR_MS
            history = workload.views(
                args.history_views, now - span, span / args.history_views, id_prefix=f"h{now}"
            )
            sent = await produce(history, kwargs, progress_every=10000)
            log.info("produced %d views of history (%d h)", sent, args.history_hours)
        # Live: event time follows the wall clock, a little out of order.
        start = int(time.time() * 1000)
        views = workload.views(None, start, 1000 / args.rate, jitter_ms=2000, id_prefix=f"l{start}")
    else:
        start = int(time.time() * 1000) - args.backfill_hours * HOUR_MS
        step = args.backfill_hours * HOUR_MS / max(args.views, 1)
        views = workload.views(args.views, start, step, id_prefix=f"b{start}")
    sent = await produce(views, kwargs, rate=args.rate, progress_every=10000)
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
    parser.add_argument("--spike-every", type=int, default=2000)
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
