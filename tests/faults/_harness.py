"""Machinery shared by the fault tests: a seeded workload and its oracle, production with a
fault injected mid-stream, waiting for the group to catch up, exact verification over HTTP
and the output topics, the workers' metrics, and the report of recovery numbers.

The workload is ``app.generator.Workload.every_case``; the oracle (independent of ``app``) and
the checks are those of ``tests/support``; this module only drives them.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiokafka.admin import AIOKafkaAdminClient

from app.generator import Record, Workload
from tests.support.broker import Broker
from tests.support.checks import check_dlq, check_insights, get_all, hour_path, week_path
from tests.support.oracle import HOUR, Oracle, Produced, hour_of, oracle, segments_from
from tests.support.topics import produce
from tests.support.workers import REPO, Worker, committed_lag, isolated_env

ARTIFACTS = REPO / "tests" / "artifacts"
REPORT = ARTIFACTS / "faults-report.json"
HOURLY_RETENTION = 48 * HOUR


def now_ms() -> int:
    return int(time.time() * 1000)


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


@contextlib.contextmanager
def own_broker(request: Any, what: str = "dedicated broker") -> Iterator[Broker]:
    """A broker of the requesting test's own (tools/kafka/kafka.sh on other ports), removed
    afterwards; its log is kept under tests/artifacts/logs/ when the test did not pass."""
    broker = Broker(ARTIFACTS / f"kafka-{request.node.name[:40]}")
    log(f"starting a {what} on {broker.bootstrap} ({broker.home})")
    took = broker.start()
    log(f"{what} ready in {took:.1f}s")
    try:
        yield broker
    finally:
        passed = getattr(request.node, "_faults_call", None) is not None and request.node._faults_call.passed
        if not passed:
            keep = ARTIFACTS / "logs" / f"{broker.home.name}-server.log"
            keep.parent.mkdir(parents=True, exist_ok=True)
            keep.write_text(broker.log_tail(5000))
        broker.destroy()


# --- workers ---------------------------------------------------------------------------------
class Cluster:
    """The workers of one test: one app id and set of topics (``isolated_env``) on one broker."""

    def __init__(self, bootstrap: str, **overrides: str) -> None:
        self.bootstrap = bootstrap
        self.env = isolated_env(bootstrap, **overrides)
        self.workers: list[Worker] = []

    @property
    def group(self) -> str:
        return self.env["APP_ID"]

    def topic(self, name: str) -> str:
        """The test's name of a product topic (views, profiles, insights, views.dlq...)."""
        base, _, rest = name.partition(".")
        mapping = {"views": "VIEWS_TOPIC", "profiles": "PROFILES_TOPIC", "insights": "INSIGHTS_TOPIC",
                   "property-events": "PROPERTY_EVENTS_TOPIC"}
        return self.env[mapping[base]] + (f".{rest}" if rest else "")

    def add(self) -> Worker:
        worker = Worker(env=self.env)
        worker.data_dir = ARTIFACTS / "data" / f"{self.group}-{worker.port}"
        worker.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.workers.append(worker)
        return worker.start()

    @property
    def alive(self) -> list[Worker]:
        return [w for w in self.workers if w.alive]

    async def ready(self, *workers: Worker, timeout: float = 180) -> None:
        await asyncio.gather(*(w.wait_ready(timeout) for w in workers or self.alive))

    def shutdown(self) -> None:
        """Stop every worker still running (SIGTERM, SIGKILL after 20 s), then reap them."""
        for worker in self.workers:
            if worker.proc is not None and worker.proc.poll() is None:
                try:
                    worker.stop(timeout=20)
                except (ProcessLookupError, subprocess.SubprocessError):
                    worker.kill()

    async def delete_topics(self) -> None:
        """Drop this test's topics (names carry its unique tag) to keep the shared broker lean."""
        tag = self.group.rsplit("-", 1)[-1]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30000)
        await admin.start()
        try:
            mine = [t for t in await admin.list_topics() if tag in t]
            if mine:
                await admin.delete_topics(mine)
        finally:
            await admin.close()

    def remove_data(self) -> None:
        for worker in self.workers:
            if worker.data_dir is not None and not worker.alive:
                shutil.rmtree(worker.data_dir, ignore_errors=True)

    def log_tails(self, lines: int = 15) -> str:
        out = []
        for worker in self.workers:
            if worker.log_path.exists():
                tail = worker.log_path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {worker.log_path.name} (alive={worker.alive})\n" + "\n".join(tail))
        return "\n".join(out)


# --- the workload ------------------------------------------------------------------------------
@dataclass
class Scenario:
    """One seeded workload for one cluster: profiles, then views, and what they must give."""

    cluster: Cluster
    seed: int
    views: int = 8000
    users: int = 1500
    properties: int = 300
    hours: int = 40  # of event time, ending ``end_hours_ago`` hours ago (< 48 h retention)
    end_hours_ago: int = 3
    workload: Workload = field(init=False)
    profile_records: list[Record] = field(init=False)
    view_records: list[Record] = field(init=False)
    produced: list[Produced] = field(init=False, default_factory=list)
    made_at_ms: int = field(init=False)

    def __post_init__(self) -> None:
        self.workload = Workload.every_case(self.seed, users=self.users, properties=self.properties,
                                           burst_every=self.views // 25)
        self.made_at_ms = now_ms()
        self.profile_records = self.workload.profiles()
        start = self.made_at_ms - (self.end_hours_ago + self.hours) * HOUR
        self.view_records = list(self.workload.views(
            self.views, start, self.hours * HOUR / self.views, now_ms=self.made_at_ms))

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap

    async def produce_profiles(self, workers: list[Worker] | None = None, timeout: float = 120) -> None:
        """Produce the profiles and wait until every worker serves the last one (and a sample):
        the join must not race the profiles table."""
        await produce(self.bootstrap, self.cluster.topic("profiles"), self.profile_records)
        segments = segments_from(self.profile_records)
        sample = sorted(segments)[:: max(len(segments) // 40, 1)] + ["user-last"]
        for worker in workers or self.cluster.alive:
            await wait_profiles(worker, {u: segments[u] for u in sample}, timeout)

    async def produce_views(self, start: int, stop: int | None, rate: float) -> None:
        part = self.view_records[start:stop]
        self.produced += await produce(self.bootstrap, self.cluster.topic("views"), part, rate=rate)

    async def stream_with_fault(
        self, rate: float, at: float, fault: Callable[[], Awaitable[None]], lead: float = 1.0
    ) -> tuple[float, float]:
        """Produce every view at ``rate``/s; ``lead`` seconds into the last ``1 - at`` of them,
        run ``fault`` (concurrently with production). Returns the monotonic times of the fault
        and of the end of production."""
        split = int(len(self.view_records) * at)
        await self.produce_views(0, split, rate)
        rest = asyncio.create_task(self.produce_views(split, None, rate))
        await asyncio.sleep(lead)
        fault_at = time.monotonic()
        try:
            await fault()
        finally:
            await rest
        return fault_at, time.monotonic()

    def expected(self) -> Oracle:
        assert len(self.produced) == len(self.view_records), "not every view was produced"
        return oracle(self.produced, self.profile_records, self.made_at_ms)


async def wait_profiles(worker: Worker, segments: dict[str, str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    todo = dict(segments)
    while todo:
        answers = await get_all(worker.url, [f"/api/users/{u}" for u in todo])
        for path, (status, body) in answers.items():
            user = path.rsplit("/", 1)[-1]
            if status == 200 and isinstance(body, dict) and body.get("segment") == todo[user]:
                del todo[user]
        if not todo:
            return
        if time.monotonic() > deadline or not worker.alive:
            raise AssertionError(f"worker {worker.port} lacks profiles {sorted(todo)[:5]}...")
        await asyncio.sleep(0.5)


# --- catching up ---------------------------------------------------------------------------------
async def wait_lag_zero(
    cluster: Cluster, timeout: float = 300, settle: float = 1.0, must_live: list[Worker] | None = None
) -> float:
    """Monotonic time at which the group had committed every views and views-by-user record
    (confirmed ``settle`` seconds later). Fails early when a worker that must live died."""
    topics = [cluster.env["VIEWS_TOPIC"], f"{cluster.group}-views-by-user-repartition"]
    deadline = time.monotonic() + timeout
    lag: int | None = None
    while time.monotonic() < deadline:
        for worker in must_live or ():
            if not worker.alive:
                code = worker.proc.returncode
                hint = " (SIGKILL from outside this test?)" if code == -9 else ""
                raise AssertionError(
                    f"worker {worker.port} exited with code {code}{hint}\n{cluster.log_tails()}"
                )
        try:
            lag = await asyncio.wait_for(committed_lag(cluster.bootstrap, cluster.group, topics), 60)
        except Exception as exc:  # noqa: BLE001 - the broker may be restarting
            lag = None
            log(f"lag probe failed: {exc!r}")
        if lag == 0:
            zero_at = time.monotonic()
            await asyncio.sleep(settle)
            if await committed_lag(cluster.bootstrap, cluster.group, topics) == 0:
                return zero_at
        await asyncio.sleep(0.5)
    raise AssertionError(f"group {cluster.group} still {lag} records behind after {timeout}s\n"
                         f"{cluster.log_tails()}")


async def conclude(
    test: str,
    fault: str,
    scenario: Scenario,
    workers: list[Worker],
    fault_at: float,
    produced_at: float | None = None,
    after: Callable[[], dict] | None = None,
    must_live: list[Worker] | None = None,
    **extra: object,
) -> dict:
    """Wait until caught up, check every answer, report the numbers (``extra``, and what
    ``after`` returns once caught up), then assert exactness, then that every worker lives.

    ``must_live`` (default: all ``workers``) fail the wait at once if they exit; the others
    may exit meanwhile: the answers are then checked on the survivors before failing."""
    cluster = scenario.cluster
    zero_at = await wait_lag_zero(cluster, must_live=workers if must_live is None else must_live)
    if after is not None:
        extra = {**extra, **after()}
    alive = [w for w in workers if w.alive]
    await cluster.ready(*alive)
    verdict = await verify(scenario, alive)
    exited = [f"{w.port} (exit code {w.proc.returncode})" for w in workers if not w.alive]
    entry = report(
        test,
        fault,
        recover_s=seconds(fault_at, zero_at),
        production_ended_s=None if produced_at is None else seconds(fault_at, produced_at),
        replayed=await metric(workers, "property_analytics_events_replayed_total"),
        reread=await metric(workers, "property_analytics_events_reread_total"),
        views=len(scenario.produced),
        broker=cluster.bootstrap,
        exited=exited or None,
        **extra,
        **verdict.summary(),
    )
    verdict.assert_exact()
    assert not exited, f"workers exited: {', '.join(exited)}\n{cluster.log_tails(40)}"
    return entry


# --- verification --------------------------------------------------------------------------------
@dataclass
class Verdict:
    hourly_checked: int = 0
    weekly_checked: int = 0
    insights_expected: int = 0
    insight_records: int = 0
    dead_letters_expected: int = 0
    mismatches: dict[str, list[str]] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return not any(self.mismatches.values())

    def summary(self) -> dict:
        return {
            "exact": self.exact,
            "hourly_checked": self.hourly_checked,
            "weekly_checked": self.weekly_checked,
            "insights": self.insights_expected,
            "insight_records": self.insight_records,
            "dead_letters": self.dead_letters_expected,
            "mismatches": {k: len(v) for k, v in self.mismatches.items() if v},
        }

    def assert_exact(self) -> None:
        if self.exact:
            return
        lines = []
        for kind, items in self.mismatches.items():
            if items:
                lines.append(f"{kind}: {len(items)} mismatches, e.g.")
                lines.extend(f"  {item}" for item in items[:8])
        raise AssertionError("answers differ from the oracle:\n" + "\n".join(lines))


async def verify(scenario: Scenario, workers: list[Worker], timeout: float = 90) -> Verdict:
    """Every hourly answer (spread over ``workers``, so routing is exercised), every weekly
    answer (on each worker), the insight ids and the dead letters, against the oracle."""
    cluster = scenario.cluster
    exp = scenario.expected()
    verdict = Verdict()

    # Hourly windows still within retention on their partition (one hour of margin).
    hourly = {
        hour_path(prop, hour): exp.hour_answer(prop, hour) for prop, hour in exp.hourly
        if hour >= hour_of(exp.stream_time[exp.partition_of[prop]] - HOURLY_RETENTION) + HOUR
    }
    verdict.hourly_checked = len(hourly)
    paths = sorted(hourly)
    shares = [
        {p: hourly[p] for p in paths[i :: len(workers)]} for i in range(len(workers))
    ]
    weekly = {week_path(segment, week): exp.week_answer(segment, week) for segment, week in exp.weekly}
    verdict.weekly_checked = len(weekly)
    # Hourly answers come from committed state (a short wait covers routing after a
    # rebalance); weekly ones from every worker's tail of the partials topic (eventual).
    results = await asyncio.gather(
        *(eventually(w, share, timeout / 3) for w, share in zip(workers, shares, strict=True)),
        *(eventually(w, weekly, timeout) for w in workers),
    )
    verdict.mismatches["hourly"] = [m for r in results[: len(workers)] for m in r]
    verdict.mismatches["weekly"] = [m for r in results[len(workers) :] for m in r]

    # Insights: exactly the expected ids; a replayed copy must carry the same identity.
    verdict.insights_expected = len(exp.insights())
    verdict.mismatches["insights"], verdict.insight_records = await check_insights(
        cluster.bootstrap, cluster.topic("insights"), exp, exactly_once=False)
    # Dead letters: every rejected view once, with its reason, key and bytes.
    verdict.dead_letters_expected = len(exp.dlq)
    verdict.mismatches["dead_letters"], _ = await check_dlq(
        cluster.bootstrap, cluster.topic("views"), exp, scenario.produced, exactly_once=True)
    return verdict


async def eventually(worker: Worker, expected: dict[str, object], timeout: float) -> list[str]:
    """Poll ``worker`` until each path answers 200 with its expected body; the mismatches left."""
    deadline, todo = time.monotonic() + timeout, dict(expected)
    mismatches: list[str] = []
    while todo:
        try:
            answers = await get_all(worker.url, list(todo))
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            answers = {}
            mismatches = [f"{worker.url}: {exc!r}"]
        else:
            mismatches = []
            for path, (status, body) in answers.items():
                if status == 200 and body == todo[path]:
                    del todo[path]
                else:
                    mismatches.append(f"{worker.port} {path}: got {status} {body!r}, expected {todo[path]!r}")
        if not todo or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    return mismatches if todo else []


# --- metrics and the report ------------------------------------------------------------------
async def metric(workers: list[Worker], name: str) -> float:
    """Sum of every sample of ``name`` over the live ``workers``' /metrics."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})?\s+(\S+)$", re.M)
    total = 0.0
    samples = 0
    for worker in workers:
        if not worker.alive:
            continue
        status, body = await worker.get("/metrics")
        assert status == 200, f"/metrics of {worker.port}: {status}"
        values = pattern.findall(body if isinstance(body, str) else str(body))
        samples += len(values)
        total += sum(float(v) for v in values)
    assert samples, f"no {name} samples on any live worker: was the metric renamed?"
    return total


def git_state() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "app"], cwd=REPO, capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + ("+dirty-app" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def report(test: str, fault: str, **numbers: object) -> dict:
    """Print one fault's numbers and append them to tests/artifacts/faults-report.json."""
    entry = {
        "test": test,
        "fault": fault,
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "code": git_state(),
        **numbers,
    }
    print("FAULT REPORT " + json.dumps(entry), flush=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with open(REPORT.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries = json.loads(REPORT.read_text()) if REPORT.exists() else []
        except ValueError:
            entries = []
        entries.append(entry)
        tmp = REPORT.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries, indent=1) + "\n")
        os.replace(tmp, REPORT)
    return entry


def seconds(a: float, b: float) -> float:
    return round(b - a, 1)
