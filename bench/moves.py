"""Measuring a move of partitions between workers (a SIGKILL, a rejoin, a rolling restart):
what clients saw, when the moved partitions opened and answered again, what was restored.

Shared by the bench's failover step (``bench.failover``) and its fault test
(``tests/faults/test_failover.py``). Three pieces:

- ``Poller``: clients asking for sampled property hours on every worker whose HTTP server is
  up, one lane per partition (a lane asks again only once its last answer came, so the order of
  its answers is the order of the state they read). Every answer is kept: its status, its
  position, its views. An answer "goes backwards" when it reflects an earlier offset of its
  partition, or fewer views of its hour, than an answer already given for the same hour.
- ``restores`` and ``opened``: the workers' own log lines ("restored <topic>[<p>] offsets
  a..b: N records in S s", "<stage>: partition <p> open"), with their times.
- ``changelog_bytes``: the bytes of the changelog records those restores applied, read back
  from the changelogs (key + value), as the log lines count records only.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import quote

import aiohttp
import orjson
from aiokafka import TopicPartition

from app.engine.committed import read_to_end
from app.engine.partitioner import key_partition
from app.windows import hour_start, iso_ms

LOG_TIME = r"^\[(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\] \[\d+\] \[\w+\] "
RESTORED = re.compile(
    LOG_TIME + r"restored (?P<topic>\S+)\[(?P<partition>\d+)\] offsets (?P<first>\d+)\.\.(?P<last>\d+): "
    r"(?P<records>\d+) records in (?P<seconds>\d+(?:\.\d+)?)s",
    re.M,
)
OPENED = re.compile(LOG_TIME + r"(?P<stage>[\w-]+): partition (?P<partition>\d+) open, resuming", re.M)
NO_ANSWER = 0  # the status of a request that got no HTTP answer (connection refused or cut)


def log_time(text: str) -> float:
    """Epoch seconds of a faust log line's time (local time, as the worker wrote it)."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass(frozen=True)
class Restore:
    at: float  # epoch seconds of the log line (the restore's end)
    topic: str
    partition: int
    first: int
    last: int
    records: int
    seconds: float


def restores(text: str, since: float = 0.0) -> list[Restore]:
    """Every restore a worker's log reports, ended at or after ``since`` (epoch seconds)."""
    found = []
    for m in RESTORED.finditer(text):
        at = log_time(m["at"])
        if at >= since:
            found.append(Restore(at, m["topic"], int(m["partition"]), int(m["first"]),
                                 int(m["last"]), int(m["records"]), float(m["seconds"])))
    return found


def opened(text: str, since: float = 0.0) -> dict[tuple[str, int], float]:
    """(stage, partition) -> when it first opened at or after ``since``, from a worker's log."""
    out: dict[tuple[str, int], float] = {}
    for m in OPENED.finditer(text):
        at = log_time(m["at"])
        if at >= since:
            out.setdefault((m["stage"], int(m["partition"])), at)
    return out


def restore_summary(found: Iterable[Restore], byte_count: int | None = None) -> dict:
    """Records, bytes, seconds and rate of a set of restores. The seconds are summed: a worker
    opens its partitions one after another."""
    found = list(found)
    records = sum(r.records for r in found)
    seconds = sum(r.seconds for r in found)
    out = {
        "restores": len(found),
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds) if seconds > 0 else None,
        "longest_s": max((r.seconds for r in found), default=None),
    }
    if byte_count is not None:
        out["bytes"] = byte_count
        out["bytes_per_s"] = round(byte_count / seconds) if seconds > 0 else None
    return out


async def changelog_bytes(client_kwargs: dict, found: Iterable[Restore]) -> int:
    """Key + value bytes of the committed changelog records in each restore's offsets (what
    compaction or deletion has removed since is not counted)."""
    total = 0
    for r in found:
        tp = TopicPartition(r.topic, r.partition)
        batches = read_to_end(client_kwargs, [tp], starts={tp: r.first}, ends={tp: r.last + 1})
        async for records in batches:
            total += sum(len(x.key or b"") + len(x.value or b"") for x in records)
    return total


# --- clients ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Answered:
    started: float  # epoch seconds
    ended: float
    url: str
    path: str
    partition: int
    status: int  # NO_ANSWER when the request got no HTTP answer
    offset: int | None = None  # the answer's position on its partition
    views: int | None = None


def goes_backwards(seen: tuple[int, int] | None, offset: int, views: int) -> bool:
    """Whether an answer (its partition's offset, its views) is older than one already seen
    for the same hour (``seen``: the furthest offset and the most views seen so far)."""
    return seen is not None and (offset < seen[0] or views < seen[1])


@dataclass
class Poller:
    """Ask for ``lanes`` (partition -> property-hour paths) on the URLs ``targets()`` gives
    (the workers whose HTTP server is up), round robin, until ``stop`` is set. ``timeout_s``:
    the request's own ``timeout``, how long a worker may wait for a moving partition."""

    lanes: dict[int, list[str]]
    targets: Callable[[], list[str]]
    topic: str
    timeout_s: float = 25.0
    pause_s: float = 0.05
    headers: dict[str, str] = field(default_factory=dict)
    answers: list[Answered] = field(default_factory=list)
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    backwards: list[str] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s + 15)
        async with aiohttp.ClientSession(timeout=timeout, headers=self.headers) as session:
            await asyncio.gather(*(self._lane(session, p, paths, stop) for p, paths in self.lanes.items()))

    async def _lane(self, session: aiohttp.ClientSession, partition: int, paths: list[str],
                    stop: asyncio.Event) -> None:
        turn = partition  # lanes start on different workers
        while not stop.is_set():
            urls = self.targets()
            if not urls or not paths:
                await asyncio.sleep(0.1)
                continue
            url = urls[turn % len(urls)]
            path = paths[turn % len(paths)]
            turn += 1
            self.answers.append(await self._ask(session, url, path, partition))
            await asyncio.sleep(self.pause_s)

    async def _ask(self, session: aiohttp.ClientSession, url: str, path: str, partition: int) -> Answered:
        started = time.time()
        try:
            async with session.get(f"{url}{path}&timeout={self.timeout_s:g}") as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return Answered(started, time.time(), url, path, partition, NO_ANSWER)
        ended = time.time()
        if status != 200:
            return Answered(started, ended, url, path, partition, status)
        body = orjson.loads(raw)
        offset = body["position"]["offsets"][self.topic][str(partition)]
        views = body["views"]
        if goes_backwards(self._seen.get(path), offset, views):
            self.backwards.append(f"{url}{path}: offset {offset}, views {views} after {self._seen[path]}")
        last = self._seen.get(path, (-1, 0))
        self._seen[path] = (max(last[0], offset), max(last[1], views))
        return Answered(started, ended, url, path, partition, status, offset, views)

    def first_served(self, partitions: Iterable[int], after: float) -> dict[int, float | None]:
        """Per partition, when the first 200 answer to a request sent at or after ``after``
        came back (None: none yet)."""
        out: dict[int, float | None] = {p: None for p in partitions}
        for a in self.answers:
            if a.status == 200 and a.started >= after and a.partition in out:
                if out[a.partition] is None or a.ended < out[a.partition]:
                    out[a.partition] = a.ended
        return out

    def summary(self, since: float = 0.0, until: float = float("inf")) -> dict:
        """What the clients saw from requests sent in [since, until)."""
        window = [a for a in self.answers if since <= a.started < until]
        by_status: dict[str, int] = {}
        for a in window:
            key = "no answer" if a.status == NO_ANSWER else str(a.status)
            by_status[key] = by_status.get(key, 0) + 1
        failed = [a for a in window if a.status >= 500]
        waits = sorted(a.ended - a.started for a in window if a.status == 200)
        return {
            "requests": len(window),
            "by_status": dict(sorted(by_status.items())),
            "five_xx": len(failed),
            "five_xx_examples": [asdict(a) for a in failed[:5]],
            "backwards": len(self.backwards),
            "backwards_examples": self.backwards[:5],
            "wait_p50_s": round(waits[len(waits) // 2], 3) if waits else None,
            "wait_max_s": round(waits[-1], 3) if waits else None,
        }


def hour_paths(keys: Iterable[tuple[str, int]]) -> list[str]:
    return [f"/api/properties/{quote(prop, safe='')}/views?hour={iso_ms(hour)}" for prop, hour in keys]


def sample_lanes(records: Iterable[tuple], partitions: int, per_partition: int) -> dict[int, list[str]]:
    """Lanes for a ``Poller``: per views partition, the ``per_partition`` property hours with
    the most of ``records`` (generator views, ``(key, value, ...)``; anything that is not a
    well-formed view is passed over), so that the answers polled move while views arrive."""
    counts: dict[tuple[str, int], int] = {}
    for record in records:
        try:
            doc = orjson.loads(record[1])
            prop, stamp = doc["propertyId"], doc["timestamp"]
            moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        except (TypeError, ValueError, KeyError, AttributeError, orjson.JSONDecodeError):
            continue
        if not isinstance(prop, str) or record[0] != prop.encode() or moment.tzinfo is None:
            continue
        key = (prop, hour_start(int(moment.timestamp() * 1000)))
        counts[key] = counts.get(key, 0) + 1
    by_partition: dict[int, list[tuple[str, int]]] = {}
    for key in sorted(counts, key=lambda k: (-counts[k], k)):
        picked = by_partition.setdefault(key_partition(key[0].encode(), partitions), [])
        if len(picked) < per_partition:
            picked.append(key)
    return {p: hour_paths(keys) for p, keys in sorted(by_partition.items())}


# --- the moves ----------------------------------------------------------------------------------
class Member(Protocol):
    """A worker process: ``tests.support.workers.Worker`` or ``bench.procs.Proc``."""

    @property
    def url(self) -> str: ...
    @property
    def alive(self) -> bool: ...
    def kill(self) -> None: ...
    def start(self): ...  # noqa: ANN201
    def stop(self, timeout: float = ...): ...  # noqa: ANN201


@dataclass
class Group:
    """The workers of a run and which of them have their HTTP server up (``targets``)."""

    members: list
    log_of: Callable[[object], str]  # a member's whole log so far
    up: set[str] = field(default_factory=set)

    def targets(self) -> list[str]:
        return sorted(self.up)

    async def ready(self, member, timeout: float = 300, http_only: bool = False) -> dict:  # noqa: ANN001
        """Wait for ``member``'s /ready to answer (200 unless ``http_only``); its body."""
        deadline = time.monotonic() + timeout
        last: object = None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline:
                if not member.alive:
                    raise AssertionError(f"{member.url} exited:\n{self.log_of(member)[-3000:]}")
                try:
                    async with session.get(member.url + "/ready") as response:
                        last = orjson.loads(await response.read())
                        if response.status == 200 or http_only:
                            return last
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
                    last = exc
                await asyncio.sleep(0.1)
        raise AssertionError(f"{member.url} not ready after {timeout:g} s: {last!r}")

    async def settled(self, timeout: float = 300) -> None:
        for member in self.members:
            await self.ready(member, timeout)

    def restores(self, since: float, members: Iterable | None = None) -> list[Restore]:
        return [r for m in (self.members if members is None else members) for r in restores(self.log_of(m), since)]

    def opened(self, since: float, members: Iterable) -> dict[tuple[str, int], float]:
        out: dict[tuple[str, int], float] = {}
        for member in members:
            for key, at in opened(self.log_of(member), since).items():
                out[key] = min(at, out.get(key, at))
        return out


async def sigkill(group: Group, victim, poller: Poller, timeout: float = 300) -> dict:  # noqa: ANN001
    """SIGKILL ``victim``; wait until every partition it held is open on a survivor (its log
    says so) and every views partition it held has answered 200 to a request sent after the
    kill. Time-to-serve: the later of the two, from the kill, for the last such partition."""
    held = (await group.ready(victim))["partitions"]
    survivors = [m for m in group.members if m is not victim]
    group.up.discard(victim.url)
    killed_at = time.time()
    victim.kill()
    want = {(stage, p) for stage, parts in held.items() for p in parts}
    deadline = time.monotonic() + timeout
    while True:
        opens = group.opened(killed_at, survivors)
        served = poller.first_served(held.get("views", []), killed_at)
        if want <= set(opens) and all(at is not None for at in served.values()):
            break
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout:g} s: not open {sorted(want - set(opens))}, "
                f"not answered {sorted(p for p, at in served.items() if at is None)}"
            )
        await asyncio.sleep(0.2)
    open_s = max(opens[key] for key in want) - killed_at if want else 0.0
    answer_s = max(served.values(), default=killed_at) - killed_at
    return {
        "held": held,
        "killed_at": killed_at,
        "open_s": round(open_s, 2),
        "answer_s": round(answer_s, 2),
        "time_to_serve_s": round(max(open_s, answer_s), 2),
        "per_views_partition_s": {str(p): round(at - killed_at, 2) for p, at in sorted(served.items())},
        "restored": [asdict(r) for r in group.restores(killed_at, survivors)],
    }


async def rejoin(group: Group, member, timeout: float = 300) -> dict:  # noqa: ANN001
    """Start ``member`` again; poll it too from the moment its HTTP server answers; wait
    until every worker is ready again."""
    started = time.time()
    member.start()
    await group.ready(member, timeout, http_only=True)
    http_s = time.time() - started
    group.up.add(member.url)
    await group.settled(timeout)
    return {"started_at": started, "http_up_s": round(http_s, 2),
            "settled_s": round(time.time() - started, 2),
            "restored": [asdict(r) for r in group.restores(started)]}


async def rolling_restart(group: Group, timeout: float = 300) -> dict:
    """Stop (SIGTERM, graceful) and start each worker in turn, the next once all are ready."""
    began = time.time()
    steps = []
    for member in group.members:
        group.up.discard(member.url)
        stopping = time.time()
        member.stop(60)
        stopped_s = time.time() - stopping
        step = await rejoin(group, member, timeout)
        steps.append({"url": member.url, "stop_s": round(stopped_s, 2), **step})
    return {"started_at": began, "seconds": round(time.time() - began, 2), "steps": steps,
            "restored": [asdict(r) for r in group.restores(began)]}
