"""End-to-end latency: from producing a live view (event time = now) to its hourly count being
visible over HTTP on the worker that owns the property.

Live views go to random properties at a fixed rate; every ``probe_every``-th one goes to one of
a few probe properties that nothing else views. A poller per probe asks the owner
``GET /api/properties/{id}/views?hour=`` every ``poll_s``; when the count reaches k, the k-th
probe view of that hour became visible, and its latency is the time of that answer minus the
time it was handed to the producer. Each sample is thus an upper bound, at most one poll
interval (plus one request) above the true latency.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from app.generator import Record, Workload
from app.stages.views import key_partition
from app.web.routing import partition_of
from app.windows import hour_start, iso_ms


@dataclass
class Probe:
    property_id: str
    owner_url: str
    sent: dict[int, list[float]] = field(default_factory=dict)  # hour -> produce times
    seen: dict[int, int] = field(default_factory=dict)  # hour -> views seen so far
    latencies: list[float] = field(default_factory=list)

    def pending_hour(self) -> int | None:
        for hour in sorted(self.sent):
            if self.seen.get(hour, 0) < len(self.sent[hour]):
                return hour
        return None


def default_poll_s(rate: float) -> float:
    """How often each probe asks for its count: every 10 ms at low rates, where the targets
    are tight and a probe view is rarely pending; every 50 ms above 500 views/s, where every
    probe has one pending all the time and faster polling would load the worker it measures."""
    return 0.01 if rate <= 500 else 0.05


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(int(round(q / 100 * (len(ordered) - 1))), len(ordered) - 1)
    return ordered[index]


def pick_probes(count: int, partitions: int, owners: dict[int, str], tag: str) -> list[Probe]:
    """Probe properties on distinct partitions, spread evenly over the workers owning them."""
    per_owner = -(-count // max(len(set(owners.values())), 1))
    probes: list[Probe] = []
    used: set[int] = set()
    taken: dict[str, int] = {}
    for i in range(10000):
        if len(probes) >= count:
            break
        prop = f"probe-{tag}-{i}"
        partition = partition_of(prop, partitions)
        owner = owners.get(partition)
        if owner is None or partition in used or taken.get(owner, 0) >= per_owner:
            continue
        used.add(partition)
        taken[owner] = taken.get(owner, 0) + 1
        probes.append(Probe(prop, owner))
    return probes


async def _poll(probe: Probe, session: aiohttp.ClientSession, poll_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        hour = probe.pending_hour()
        if hour is not None:
            url = f"{probe.owner_url}/api/properties/{probe.property_id}/views?hour={iso_ms(hour)}"
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=5)) as response:
                    body = await response.read()
                answered = time.monotonic()
                if response.status == 200:
                    views = orjson.loads(body)["views"]
                    already = probe.seen.get(hour, 0)
                    sent = probe.sent.get(hour, [])
                    for k in range(already, min(views, len(sent))):
                        probe.latencies.append(answered - sent[k])
                    probe.seen[hour] = max(already, min(views, len(sent)))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError, ValueError):
                pass
        await asyncio.sleep(poll_s)


async def measure(
    *,
    client_kwargs: dict,
    views_topic: str,
    partitions: int,
    owners: dict[int, str],
    rate: float,
    duration_s: float,
    users: int,
    properties: int,
    tag: str,
    probes: int = 4,
    probe_every: int = 20,
    poll_s: float | None = None,
    drain_s: float = 15.0,
    on_progress: Callable[[str], None] = lambda _: None,
    on_acked: Callable[[int, int, Record], None] = lambda *_: None,
    tick_s: float = 0.02,
) -> dict:
    """Live views at ``rate`` for ``duration_s``, handed to the producer every ``tick_s``
    (each probe view's latency counts from then); ``on_acked`` sees each with its partition
    and offset once production is over, in send order."""
    if poll_s is None:
        poll_s = default_poll_s(rate)
    probe_list = pick_probes(probes, partitions, owners, tag)
    if not probe_list:
        return {"error": "no owner known for any probe partition"}
    rng = random.Random(11)
    producer = AIOKafkaProducer(acks="all", linger_ms=2, enable_idempotence=True, **client_kwargs)
    await producer.start()
    stop = asyncio.Event()
    session = aiohttp.ClientSession()
    pollers = [asyncio.create_task(_poll(p, session, poll_s, stop)) for p in probe_list]
    sent = 0
    acks: list[tuple[asyncio.Future, int, list[Record]]] = []  # one per batch sent
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < duration_s:
            due = int(elapsed * rate) + 1 - sent  # views due by now
            if due <= 0:
                await asyncio.sleep(max((sent - elapsed * rate) / rate, tick_s))
                continue
            # The views due are handed over a batch per partition: the producer's per-record
            # work would otherwise take the worker's CPU on a small machine at high rates.
            batches: dict[int, tuple[object, list[Record]]] = {}
            now_ms = int(time.time() * 1000)
            for _ in range(due):
                if sent % probe_every == 0:
                    probe = probe_list[(sent // probe_every) % len(probe_list)]
                    record = Workload.view(f"live-{tag}-{sent}", now_ms, probe.property_id, f"user-{rng.randrange(users)}")
                    probe.sent.setdefault(hour_start(now_ms), []).append(time.monotonic())
                else:
                    record = Workload.view(
                        f"live-{tag}-{sent}", now_ms, f"prop-{rng.randrange(properties)}", f"user-{rng.randrange(users)}"
                    )
                partition = key_partition(record.key, partitions)
                entry = batches.get(partition)
                if entry is None or entry[0].append(key=record.key, value=record.value, timestamp=None) is None:
                    if entry is not None:  # full: send it, start another
                        acks.append((await producer.send_batch(entry[0], views_topic, partition=partition), partition, entry[1]))
                    entry = batches[partition] = (producer.create_batch(), [])
                    entry[0].append(key=record.key, value=record.value, timestamp=None)
                entry[1].append(record)
                sent += 1
                if sent % 500 == 0:
                    seen = sum(len(p.latencies) for p in probe_list)
                    on_progress(f"{sent:,} live views sent ({sent / max(elapsed, 1e-9):,.0f}/s), {seen} probe views seen")
            for partition, (batch, records) in batches.items():
                acks.append((await producer.send_batch(batch, views_topic, partition=partition), partition, records))
        await producer.flush()
        produced_s = time.monotonic() - started
        drain_until = time.monotonic() + drain_s
        while time.monotonic() < drain_until and any(p.pending_hour() is not None for p in probe_list):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.gather(*pollers, return_exceptions=True)
        await session.close()
        await producer.stop()
    for ack, partition, records in acks:  # after the measurement: feeding the oracle takes a while
        base = ack.result().offset
        for i, record in enumerate(records):
            on_acked(partition, base + i, record)
    latencies = [lat for p in probe_list for lat in p.latencies]
    probe_sent = sum(len(v) for p in probe_list for v in p.sent.values())
    return {
        "rate_target": rate,
        "rate_achieved": sent / produced_s if produced_s else 0.0,
        "live_views": sent,
        "seconds": produced_s,
        "probes": [p.property_id for p in probe_list],
        "probe_views": probe_sent,
        "samples": len(latencies),
        "not_seen": probe_sent - len(latencies),
        "poll_interval_ms": poll_s * 1000,
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies) if latencies else None),
    }


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None
