"""End-to-end latency: from producing a live view (event time = now) to its hourly count being
visible over HTTP on the worker that owns the property.

Live views go to random properties at a fixed rate; every ``probe_every``-th one goes to one of
a few probe properties that nothing else views. A poller per probe and series asks the owner
``GET /api/properties/{id}/views?hour=`` (``&consistency=latest`` for the latest series); when
the count reaches k, the k-th probe view of that hour became visible, and its latency is the
time of that answer minus the time it was handed to the producer. Each question after the
first asks ``atLeast`` one offset past the position of the last answer, so the owner answers
at the very move that passes it (its commit; for latest, its processing): each sample is the
latency plus one HTTP answer. With ``wait=False`` the pollers ask every ``poll_s`` instead,
each sample then at most one poll interval (plus one request) above the true latency.
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
from app.engine.partitioner import key_partition
from app.web.routing import partition_of
from app.windows import hour_start, iso_ms


COMMITTED = "committed"
LATEST = "latest"  # ``?consistency=latest``: the owner's applied state, ahead of its commit
SERIES = (COMMITTED, LATEST)
AT_LEAST_TIMEOUT_S = 10.0


@dataclass
class Probe:
    property_id: str
    owner_url: str
    sent: dict[int, list[float]] = field(default_factory=dict)  # hour -> produce times
    # per series (committed, latest): hour -> views seen so far, and the latencies found
    seen: dict[str, dict[int, int]] = field(default_factory=lambda: {s: {} for s in SERIES})
    found: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in SERIES})

    @property
    def latencies(self) -> list[float]:
        return self.found[COMMITTED]

    def pending_hour(self, series: str = COMMITTED) -> int | None:
        seen = self.seen[series]
        for hour in sorted(self.sent):
            if seen.get(hour, 0) < len(self.sent[hour]):
                return hour
        return None

    def observe(self, series: str, hour: int, views: int, answered: float) -> int:
        """An answer of ``series`` counting ``views`` in ``hour`` at time ``answered``: the
        probe views it shows for the first time become samples; returns how many."""
        seen = self.seen[series]
        already = seen.get(hour, 0)
        sent = self.sent.get(hour, [])
        upto = min(views, len(sent))
        for k in range(already, upto):
            self.found[series].append(answered - sent[k])
        seen[hour] = max(already, upto)
        return max(upto - already, 0)


def summary(latencies: list[float], sent: int) -> dict:
    """p50, p99 and max in ms of one series, with its samples and the views it never saw."""
    return {
        "samples": len(latencies),
        "not_seen": sent - len(latencies),
        "p50_ms": _ms(percentile(latencies, 50)),
        "p99_ms": _ms(percentile(latencies, 99)),
        "max_ms": _ms(max(latencies) if latencies else None),
    }


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


def hour_url(owner_url: str, property_id: str, hour: int, series: str = COMMITTED,
             at_least: str | None = None) -> str:
    url = f"{owner_url}/api/properties/{property_id}/views?hour={iso_ms(hour)}"
    if series == LATEST:
        url += "&consistency=latest"
    if at_least is not None:
        url += f"&atLeast={at_least}&timeout={AT_LEAST_TIMEOUT_S:g}"
    return url


def next_bound(body: dict) -> str | None:
    """``atLeast`` for the answer after ``body``: one offset past the position it reflects
    (an hour's answer names one partition), so that the owner answers at its next move."""
    try:
        ((topic, partitions),) = body["position"]["offsets"].items()
        ((partition, offset),) = partitions.items()
        return f"{topic}:{int(partition)}:{int(offset) + 1}"
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


async def _poll(
    probe: Probe, session: aiohttp.ClientSession, poll_s: float, stop: asyncio.Event,
    series: str = COMMITTED, wait: bool = True,
) -> None:
    """Ask the probe's owner for its pending hour until every probe view is seen. ``wait``:
    each question after the first asks ``atLeast`` one offset past the last answer's position,
    so the owner answers at the move (commit, or processing for ``latest``) that passes it
    and every sample is exact; otherwise every ``poll_s``, each sample at most that late."""
    bound: str | None = None
    while not stop.is_set():
        hour = probe.pending_hour(series)
        if hour is None:
            await asyncio.sleep(poll_s)
            continue
        url = hour_url(probe.owner_url, probe.property_id, hour, series, bound if wait else None)
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
                body = await response.read()
            answered = time.monotonic()
            if response.status == 200:
                answer = orjson.loads(body)
                probe.observe(series, hour, answer["views"], answered)
                bound = next_bound(answer)
                if wait and bound is not None:
                    continue  # the next answer comes when the partition moves
            elif response.status == 504 and wait:
                continue  # nothing moved within the timeout: ask again
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, KeyError, ValueError):
            pass
        await asyncio.sleep(poll_s)


async def _at_least(
    probe: Probe,
    producer: AIOKafkaProducer,
    session: aiohttp.ClientSession,
    views_topic: str,
    every_s: float,
    stop: asyncio.Event,
    users: int,
    tag: str,
    found: list[float],
    written: list[tuple[int, int, Record]],
) -> None:
    """Read-your-writes: produce a view of ``probe``, then ask its owner for the hour with the
    record's own metadata as ``atLeast``; the sample is produce -> answer, no polling."""
    rng = random.Random(13)
    i = 0
    while not stop.is_set():
        now_ms = int(time.time() * 1000)
        record = Workload.view(f"live-{tag}-al-{i}", now_ms, probe.property_id, f"user-{rng.randrange(users)}")
        i += 1
        started = time.monotonic()
        try:
            meta = await producer.send_and_wait(views_topic, key=record.key, value=record.value)
            written.append((meta.partition, meta.offset, record))
            bound = f"{views_topic}:{meta.partition}:{meta.offset}"
            url = hour_url(probe.owner_url, probe.property_id, hour_start(now_ms), COMMITTED, bound)
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=15)) as response:
                await response.read()
                if response.status == 200:
                    found.append(time.monotonic() - started)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            pass
        # At random times: a fixed pause after each answer (itself right after a commit) would
        # lock the views to one phase of the commit cycle, each waiting nearly a full interval.
        await asyncio.sleep(rng.uniform(0.5, 1.5) * every_s)


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
    series: tuple[str, ...] = SERIES,
    at_least_every_s: float | None = 0.2,
    wait: bool = True,
) -> dict:
    """Live views at ``rate`` for ``duration_s``, handed to the producer every ``tick_s``
    (each probe view's latency counts from then); ``on_acked`` sees each with its partition
    and offset once production is over, in offset order per partition.

    Each probe is polled once per series (``committed``, and ``latest`` answers ahead of the
    commit); with ``at_least_every_s`` one more probe property gets a view that often, asked
    for at once with its own metadata as ``atLeast`` (``at_least`` in the result)."""
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
    pollers = [
        asyncio.create_task(_poll(p, session, poll_s, stop, kind, wait))
        for p in probe_list for kind in series
    ]
    producing: list[asyncio.Task] = []  # the atLeast probe: ends its produce and question
    at_least_found: list[float] = []
    at_least_written: list[tuple[int, int, Record]] = []
    if at_least_every_s:
        used = {partition_of(p.property_id, partitions) for p in probe_list}
        spare = {p: url for p, url in owners.items() if p not in used} or owners
        own = pick_probes(1, partitions, spare, f"{tag}-al")
        if own:
            producing.append(asyncio.create_task(_at_least(
                own[0], producer, session, views_topic, at_least_every_s, stop, users, tag,
                at_least_found, at_least_written,
            )))
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
        while time.monotonic() < drain_until and any(
            p.pending_hour(kind) is not None for p in probe_list for kind in series
        ):
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        for poller in pollers:  # a question may wait for a move that no longer comes
            poller.cancel()
        await asyncio.gather(*pollers, *producing, return_exceptions=True)
        await session.close()
        await producer.stop()
    # after the measurement: feeding the oracle takes a while
    written = list(at_least_written)
    for ack, partition, records in acks:
        base = ack.result().offset
        written.extend((partition, base + i, record) for i, record in enumerate(records))
    for partition, offset, record in sorted(written, key=lambda w: (w[0], w[1])):
        on_acked(partition, offset, record)
    probe_sent = sum(len(v) for p in probe_list for v in p.sent.values())
    found = {kind: [lat for p in probe_list for lat in p.found[kind]] for kind in series}
    result = {
        "rate_target": rate,
        "rate_achieved": sent / produced_s if produced_s else 0.0,
        "live_views": sent,
        "seconds": produced_s,
        "probes": [p.property_id for p in probe_list],
        "probe_views": probe_sent,
        "poll_interval_ms": None if wait else poll_s * 1000,
        "asked": "at each move (atLeast past the last answer)" if wait else "polled",
        **summary(found.get(COMMITTED, []), probe_sent),
    }
    if LATEST in series:
        result[LATEST] = summary(found[LATEST], probe_sent)
    if at_least_every_s:
        result["at_least"] = summary(at_least_found, len(at_least_written))
    return result


def _ms(seconds: float | None) -> float | None:
    return round(seconds * 1000, 1) if seconds is not None else None
