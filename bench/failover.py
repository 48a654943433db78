"""``python -m bench.failover``: failover measured with three workers (``--workers``).

Preloads views (the oracle fed with each acked record, as ``bench.preload`` does), starts the
workers, waits until they have committed everything, then, with clients polling sampled
property hours on every worker whose HTTP server is up and the last ``--live-views`` views
produced live at ``--live-rate``: SIGKILLs one worker (time-to-serve of the partitions it
held, what the survivors restored), starts it again (a rejoin), and restarts all of them one
after another (SIGTERM, start, ready). Then it waits until the group has committed every view
and checks a sample of answers against the oracle. What the clients saw (5xx, answers going
backwards) is reported per move. The measuring pieces are ``bench.moves``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.generator import Workload, produce
from app.settings import Settings
from app.topics import ensure_topics
from app.windows import HOUR_MS
from bench import answers, procs, report
from bench.groups import GroupWatch
from bench.moves import (
    Group,
    Poller,
    Restore,
    changelog_bytes,
    rejoin,
    restore_summary,
    rolling_restart,
    sample_lanes,
    sigkill,
)
from bench.preload import segment_names
from bench.procs import Proc, faust_worker, wait_http
from tests.support.oracle import Oracle


@dataclass
class Options:
    bootstrap: str
    views: int = 200_000
    users: int = 100_000
    properties: int = 20_000
    segments: int = 5
    partitions: int = 12
    workers: int = 3
    days: float = 1.5
    seed: int = 7
    live_views: int = 30_000
    live_rate: float = 250.0
    poll_timeout_s: float = 25.0
    group_instance_id: str | None = None  # GROUP_INSTANCE_ID of the workers (auto: static)
    standby_replicas: int = 1  # STANDBY_REPLICAS of the workers
    sigkill_only: bool = False  # no rejoin and no rolling restart after the kill
    keep_topics: bool = False
    command: str = ""


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS or localhost:9092")
    parser.add_argument("--views", type=int, default=200_000, help="views in all, the live ones included")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--properties", type=int, default=20_000)
    parser.add_argument("--segments", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--workers", type=int, default=3, help="at least 2")
    parser.add_argument("--days", type=float, default=1.5, help="event times spread over this many days before now")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--live-views", type=int, default=30_000, help="of --views, produced during the moves")
    parser.add_argument("--live-rate", type=float, default=250.0, help="views/s during the moves")
    parser.add_argument("--poll-timeout", type=float, default=25.0,
                        help="the clients' ?timeout= (s, at most 30): how long a worker may wait for a moving partition")
    parser.add_argument("--group-instance-id", default=None, choices=("auto",),
                        help="GROUP_INSTANCE_ID=auto for the workers: static membership")
    parser.add_argument("--standby-replicas", type=int, default=1,
                        help="STANDBY_REPLICAS for the workers (0: no standby copies)")
    parser.add_argument("--sigkill-only", action="store_true",
                        help="measure the SIGKILL only: no rejoin, no rolling restart")
    parser.add_argument("--keep-topics", action="store_true")
    args = parser.parse_args(argv)
    problems = []
    if args.workers < 2:
        problems.append("--workers must be at least 2 (one is killed)")
    if args.views < 1000 or not 0 < args.live_views < args.views:
        problems.append("--views must be at least 1000 and --live-views between 1 and --views - 1")
    if not 0 < args.poll_timeout <= 30:
        problems.append("--poll-timeout must be above 0 and at most 30 seconds")
    if not 0 <= args.standby_replicas <= 8:
        problems.append("--standby-replicas must be between 0 and 8")
    if args.live_rate <= 0 or args.partitions < 1 or args.users < 1 or args.properties < 1:
        problems.append("--live-rate, --partitions, --users and --properties must be positive")
    if problems:
        parser.error("; ".join(problems))
    bootstrap = args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
    return Options(
        bootstrap, args.views, args.users, args.properties, args.segments, args.partitions,
        args.workers, args.days, args.seed, args.live_views, args.live_rate, args.poll_timeout,
        args.group_instance_id, args.standby_replicas, args.sigkill_only, args.keep_topics,
        "python -m bench.failover " + " ".join(argv),
    )


def say(text: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {text}", flush=True)


class Failover:
    def __init__(self, o: Options) -> None:
        self.o = o
        self.tag = uuid.uuid4().hex[:6]
        self.stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-failover-{self.tag}-"))
        self.logs = report.RESULTS / "logs" / f"failover-{self.stamp}"
        prefix = f"bench-{self.tag}"
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": o.bootstrap,
            "APP_ID": f"{prefix}-failover",
            "VIEWS_TOPIC": f"{prefix}-views",
            "PROFILES_TOPIC": f"{prefix}-profiles",
            "PROPERTY_EVENTS_TOPIC": f"{prefix}-property-events",
            "INSIGHTS_TOPIC": f"{prefix}-failover-insights",
            "TOPIC_PARTITIONS": str(o.partitions),
            "STANDBY_REPLICAS": str(o.standby_replicas),
        }
        if o.group_instance_id is not None:
            self.env["GROUP_INSTANCE_ID"] = o.group_instance_id
        self.settings = Settings(
            kafka_bootstrap_servers=o.bootstrap, app_id=self.env["APP_ID"],
            views_topic=self.env["VIEWS_TOPIC"], profiles_topic=self.env["PROFILES_TOPIC"],
            property_events_topic=self.env["PROPERTY_EVENTS_TOPIC"],
            insights_topic=self.env["INSIGHTS_TOPIC"], topic_partitions=o.partitions,
        )
        self.kwargs = self.settings.kafka_client_kwargs()
        self.procs: list[Proc] = []

    async def run(self) -> dict:
        o = self.o
        results: dict = {
            "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "command": o.command,
            "parameters": {k: v for k, v in vars(o).items() if k not in ("command", "bootstrap")},
            "broker": o.bootstrap,
            "machine": report.machine(),
            "code": report.code_version(),
            "loadavg_start": report.loadavg(),
            "session_timeout_s": self.settings.session_timeout_seconds,
        }
        try:
            await ensure_topics(self.settings)
            await asyncio.sleep(1.0)
            oracle, views = await self._preload(results)
            split = len(views) - o.live_views
            self.procs = [
                faust_worker(f"w{i}", "app.main", self.env, self.tmp, self.logs).start()
                for i in range(o.workers)
            ]
            started = time.monotonic()
            await self._caught_up(split, "catch-up")
            results["catch_up_s"] = round(time.monotonic() - started, 1)
            for proc in self.procs:
                await wait_http(proc, "/ready", 300)
            group = Group(self.procs, lambda p: p.log_path.read_text(errors="replace"),
                          {p.url for p in self.procs})
            lanes = sample_lanes(views[split:], o.partitions, per_partition=4)
            poller = Poller(lanes, group.targets, self.env["VIEWS_TOPIC"], timeout_s=o.poll_timeout_s)
            stop = asyncio.Event()
            polling = asyncio.create_task(poller.run(stop))
            live = asyncio.create_task(produce(
                self.env["VIEWS_TOPIC"], views[split:], self.kwargs, rate=o.live_rate,
                on_acked=lambda ack, r: oracle.add_view(ack.partition, ack.offset, r[0], r[1]),
            ))
            await asyncio.sleep(5.0)  # the clients' answers before any move
            try:
                say(f"SIGKILL {self.procs[0].name}")
                kill = await sigkill(group, self.procs[0], poller)
                say(f"served again {kill['time_to_serve_s']} s after the kill")
                back = rolling = None
                if not o.sigkill_only:
                    say("starting it again")
                    back = await rejoin(group, self.procs[0])
                    say("rolling restart")
                    rolling = await rolling_restart(group)
                say("waiting for the live views and the group")
                await live
                await self._caught_up(len(views), "final")
                await asyncio.sleep(2.0)
            finally:
                stop.set()
                await polling
            results["sigkill"] = await self._move(
                kill, poller, kill["killed_at"], back["started_at"] if back else float("inf")
            )
            if back is not None and rolling is not None:
                results["rejoin"] = await self._move(back, poller, back["started_at"], rolling["started_at"])
                results["rolling_restart"] = await self._move(rolling, poller, rolling["started_at"])
            results["clients"] = poller.summary()
            results["answers"] = await self._check(oracle)
            results["rss_peak_bytes_each"] = [p.peak_rss() for p in self.procs]
        finally:
            for proc in self.procs:
                proc.stop()
            if not o.keep_topics:
                await self._delete_topics()
            shutil.rmtree(self.tmp, ignore_errors=True)
        results["loadavg_end"] = report.loadavg()
        return results

    async def _preload(self, results: dict) -> tuple[Oracle, list]:
        o = self.o
        workload = Workload(seed=o.seed, users=o.users, properties=o.properties,
                            segments=segment_names(o.segments))
        oracle = Oracle(now_ms=int(time.time() * 1000))
        started = time.monotonic()
        profiles = await produce(self.env["PROFILES_TOPIC"], workload.profiles(), self.kwargs,
                                 on_acked=lambda _, r: oracle.add_profile(r[0], r[1]))
        end_ms = int(time.time() * 1000) - 120_000
        span_ms = int(o.days * 24 * HOUR_MS)
        views = list(workload.views(o.views, end_ms - span_ms, span_ms / o.views))
        split = len(views) - o.live_views
        await produce(self.env["VIEWS_TOPIC"], views[:split], self.kwargs,
                      on_acked=lambda ack, r: oracle.add_view(ack.partition, ack.offset, r[0], r[1]))
        results["preload"] = {"profiles": profiles, "views": split, "live_views": o.live_views,
                              "seconds": round(time.monotonic() - started, 1)}
        say(f"preloaded {profiles:,} profiles and {split:,} views")
        return oracle, views

    async def _caught_up(self, views: int, what: str, timeout: float = 1800) -> None:
        watch = GroupWatch(self.kwargs, self.env["APP_ID"], self.env["VIEWS_TOPIC"])
        watch.extra_topics = [f"{self.env['APP_ID']}-views-by-user-repartition"]
        await watch.start()
        deadline = time.monotonic() + timeout
        try:
            while True:
                dead = [p for p in self.procs if not p.alive]
                if dead:
                    raise RuntimeError(f"{dead[0].name} exited:\n{dead[0].log_tail()}")
                state = await watch.poll()
                if state.caught_up and state.processed >= views:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{what}: not caught up after {timeout:g} s: {state}")
                await asyncio.sleep(1.0)
        finally:
            await watch.stop()

    async def _move(self, move: dict, poller: Poller, since: float, until: float = float("inf")) -> dict:
        found = [Restore(**r) for r in move.pop("restored")]
        out = {k: v for k, v in move.items() if k not in ("killed_at", "started_at")}
        out["restored"] = restore_summary(found, await changelog_bytes(self.kwargs, found))
        out["clients"] = poller.summary(since, until)
        return out

    async def _check(self, oracle: Oracle) -> dict:
        sample = answers.sample_hours(oracle, 40, self.settings.hourly_retention_seconds * 1000, self.o.seed)
        weeks = sorted(oracle.weekly)
        want = answers.expected(oracle, sample, weeks)
        checks = {}
        for proc in [p for p in self.procs if p.alive]:  # the killed one stays down: --sigkill-only
            got = await answers.from_product(proc.url, sample, weeks, want)
            checks[proc.name] = answers.compare(got, want)
        return checks

    async def _delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(**self.kwargs)
        try:
            await admin.start()
            mine = [t for t in await admin.list_topics() if f"bench-{self.tag}" in t]
            if mine:
                await admin.delete_topics(mine)
        except Exception as exc:  # noqa: BLE001 - leftover topics are a nuisance, not a failure
            print(f"could not delete the run's topics: {exc!r}", file=sys.stderr)
        finally:
            await admin.close()


def summary(results: dict) -> list[str]:
    """The figures as lines for the terminal and docs/measurements.md."""
    lines = []
    session = results["session_timeout_s"]
    for name in ("sigkill", "rejoin", "rolling_restart"):
        move = results.get(name)
        if not move:
            continue
        r, c = move["restored"], move["clients"]
        head = f"{name}: "
        if name == "sigkill":
            head += (f"time-to-serve {move['time_to_serve_s']} s (open {move['open_s']} s, answering "
                     f"{move['answer_s']} s; session timeout {session:g} s), ")
        elif name == "rejoin":
            head += f"HTTP up {move['http_up_s']} s, all ready {move['settled_s']} s, "
        else:
            head += f"{move['seconds']} s for {len(move['steps'])} workers, "
        mb = r.get("bytes", 0) / 1e6
        rate = r["records_per_s"]
        lines.append(
            head + f"restored {r['records']:,} records / {mb:.1f} MB in {r['restores']} restores "
            f"({r['seconds']} s summed, {rate if rate is not None else '-'} records/s); clients: "
            f"{c['requests']:,} requests, {c['five_xx']} 5xx, {c['backwards']} backwards, "
            f"statuses {c['by_status']}, longest wait {c['wait_max_s']} s"
        )
    for name, check in results.get("answers", {}).items():
        lines.append(f"answers via {name}: {check['equal']}/{check['checked']} equal to the oracle")
    return lines


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    procs.guard_children()
    procs.die_with_parent()
    results = asyncio.run(Failover(options).run())
    report.RESULTS.mkdir(parents=True, exist_ok=True)
    path = report.RESULTS / f"failover-{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.json"
    text = json.dumps(results, indent=1) + "\n"
    path.write_text(text)
    (report.RESULTS / "failover-latest.json").write_text(text)
    for line in summary(results):
        print(line)
    print(f"results: {path}")
    exact = all(c["equal"] == c["checked"] for c in results.get("answers", {}).values())
    clean = all(results[m]["clients"]["five_xx"] == 0 and results[m]["clients"]["backwards"] == 0
                for m in ("sigkill", "rejoin", "rolling_restart") if m in results)
    return 0 if exact and clean else 1


if __name__ == "__main__":
    sys.exit(main())
