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
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.generator import Workload, produce
from app.topics import ensure_topics
from app.windows import HOUR_MS
from bench import answers, arguments, procs, report
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
from bench.topics import app_env, delete_run_topics, run_env, settings_of
from tests.support.oracle import Oracle


@dataclass
class Options(arguments.Workload):
    workers: int = 3
    live_views: int = 30_000
    live_rate: float = 250.0
    poll_timeout_s: float = 25.0
    group_instance_id: str | None = None  # GROUP_INSTANCE_ID of the workers (auto: static)
    standby_replicas: int = 1  # STANDBY_REPLICAS of the workers
    sigkill_only: bool = False  # no rejoin and no rolling restart after the kill


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__.split("\n\n")[0])
    arguments.add_workload(parser, views=200_000, views_help="views in all, the live ones included",
                           users=100_000, days=1.5)
    parser.add_argument("--workers", type=int, default=3, help="at least 2")
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
    args = parser.parse_args(argv)
    arguments.require_positive(parser, args, ("properties", "users", "segments", "partitions", "days", "live_rate"))
    problems = []
    if args.workers < 2:
        problems.append("--workers must be at least 2 (one is killed)")
    if args.views < 1000 or not 0 < args.live_views < args.views:
        problems.append("--views must be at least 1000 and --live-views between 1 and --views - 1")
    if not 0 < args.poll_timeout <= 30:
        problems.append("--poll-timeout must be above 0 and at most 30 seconds")
    if not 0 <= args.standby_replicas <= 8:
        problems.append("--standby-replicas must be between 0 and 8")
    if problems:
        parser.error("; ".join(problems))
    return Options(
        **arguments.workload(args, "python -m bench.failover " + " ".join(argv)),
        workers=args.workers, live_views=args.live_views, live_rate=args.live_rate,
        poll_timeout_s=args.poll_timeout, group_instance_id=args.group_instance_id,
        standby_replicas=args.standby_replicas, sigkill_only=args.sigkill_only,
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
        self.env = app_env(run_env(self.tag, o.bootstrap, o.partitions), self.tag, "failover")
        if o.group_instance_id is not None:
            self.env["GROUP_INSTANCE_ID"] = o.group_instance_id
        self.env["STANDBY_REPLICAS"] = str(o.standby_replicas)
        self.settings = settings_of(self.env)
        self.kwargs = self.settings.kafka_client_kwargs()
        self.procs: list[Proc] = []
        self.killed: Proc | None = None  # left down (--sigkill-only)

    async def run(self) -> dict:
        o = self.o
        results: dict = {
            **report.header(o.command, o.bootstrap),
            "parameters": {k: v for k, v in vars(o).items() if k not in ("command", "bootstrap")},
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
                if o.sigkill_only:
                    self.killed = self.procs[0]
                else:
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
                await delete_run_topics(self.kwargs, self.tag)
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
                dead = [p for p in self.procs if not p.alive and p is not self.killed]
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
