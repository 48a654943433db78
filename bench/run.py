"""The benchmark run: preload once, then each stage in turn over the same views topic.

Stages (``--skip`` takes these names): ceiling, floor, pipeline, quix, pipeline2, latency,
profile. Every stage reads the whole views topic from the start with a fresh consumer group
and fresh state, and is timed from its first to its last event processed: for stages that
commit, from the first poll that sees committed offsets to the poll that sees the group
caught up (polls every 0.5 s); rates count only the events between those two polls.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from app.topics import ensure_topics
from bench import answers, ceiling, latency, profile, report, targets
from bench.arguments import Workload
from bench.groups import GroupWatch
from bench.preload import preload
from bench.procs import Proc, faust_worker, get_json, rocksdb_memory, wait_http
from bench.progress import Progress, rate_text
from bench.topics import app_env, delete_run_topics, run_env, settings_of

STAGES = ("ceiling", "floor", "pipeline", "quix", "pipeline2", "latency", "profile")
# Seconds each stage may take for the default 500k views; scaled by the input size.
CAPS_S = {"ceiling": 120, "floor": 240, "pipeline": 540, "quix": 300, "pipeline2": 420}
CAPS_VIEWS = 500_000
LABELS = {
    "ceiling": "a. ceiling (aiokafka + orjson)",
    "floor": "b. faust floor (no-op agent)",
    "pipeline": "c. pipeline, 1 worker",
    "quix": "d. quix streams peer",
    "pipeline2": "e. pipeline, 2 workers",
}
MIN_STAGE_S = 45
POLL_S = 0.5


@dataclass
class Options(Workload):
    skip: set[str] = field(default_factory=set)
    quick: bool = False
    budget_s: float = 1200.0
    latency_s: float = 30.0
    latency_rate: float | None = None  # None: half the 1-worker pipeline's rate
    # Shares of the measured maximum (``--curve``) and fixed rates in views/s
    # (``--curve-rates``) at which to measure latency too: the latency-throughput curve, one
    # ``curve_s`` step at each, lowest rate first, after the main measurement. Shorter than
    # the latency step: the quix and 2-worker stages read the live views too.
    curve: tuple[float, ...] = ()
    curve_rates: tuple[float, ...] = ()
    curve_s: float = 15.0
    quix_guarantee: str = "exactly-once"


class Bench:
    def __init__(self, opts: Options) -> None:
        self.o = opts
        self.tag = uuid.uuid4().hex[:6]
        self.stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
        self.progress = Progress()
        self.started = time.monotonic()
        self.deadline = self.started + opts.budget_s - 60  # room for answers, cleanup, output
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{self.tag}-"))
        self.logs = report.RESULTS / "logs" / self.stamp
        self.procs: list[Proc] = []
        self.base_env = run_env(self.tag, opts.bootstrap, opts.partitions)
        self.settings = settings_of(self.env("p1"))
        self.results: dict = {
            **report.header(opts.command, opts.bootstrap),
            "parameters": {
                "views": opts.views, "properties": opts.properties, "users": opts.users,
                "segments": opts.segments, "partitions": opts.partitions, "days": opts.days,
                "seed": opts.seed, "skip": sorted(opts.skip), "quick": opts.quick,
                "budget_s": opts.budget_s, "latency_s": opts.latency_s,
                "latency_rate": opts.latency_rate,
                "curve": list(opts.curve), "curve_rates": list(opts.curve_rates),
                "curve_s": opts.curve_s,
                "quix_guarantee": opts.quix_guarantee,
            },
            "run_id": self.tag,
            "stages": {},
            "checks": {},
            "latency": None,
            "profile": None,
        }
        self.sample: list[tuple[str, int]] = []
        self.weeks: list[tuple[str, int]] = []
        self.want = None

    # -- helpers ------------------------------------------------------------------------
    def env(self, name: str) -> dict[str, str]:
        return app_env(self.base_env, self.tag, name)

    def runs(self, stage: str) -> bool:
        return stage not in self.o.skip

    def limit(self, stage: str) -> float:
        later = [s for s in CAPS_S if self.runs(s) and list(CAPS_S).index(s) > list(CAPS_S).index(stage)]
        left = self.deadline - time.monotonic() - MIN_STAGE_S * len(later)
        if self.runs("latency"):
            steps = len(self.o.curve) + len(self.o.curve_rates)
            left -= self.o.latency_s + 30 + (self.o.curve_s + 10) * steps
        cap = CAPS_S[stage] * max(1.0, self.o.views / CAPS_VIEWS)
        return max(min(cap, left), 20.0)

    def say(self, stage: str, text: str) -> None:
        self.progress.update(stage, text)

    # -- the run ------------------------------------------------------------------------
    async def run(self) -> dict:
        try:
            await self._check_broker()
            await self._preload()
            n = self.results["preload"]["views"]
            if self.runs("ceiling"):
                await self._stage("ceiling", self._ceiling(n))
            if self.runs("floor"):
                await self._stage("floor", self._floor(n))
            if self.runs("pipeline"):
                await self._stage("pipeline", self._pipeline("pipeline", 1, n, with_latency=True))
            # the latency stage appends live views: later stages read those too
            n = await self._views_end()
            if self.runs("quix"):
                await self._stage("quix", self._quix(n))
            if self.runs("pipeline2"):
                await self._stage("pipeline2", self._pipeline("pipeline2", 2, n, with_latency=False))
        finally:
            for proc in self.procs:
                proc.stop()
            if not self.o.keep_topics:
                await delete_run_topics(self.settings.kafka_client_kwargs(), self.tag)
            shutil.rmtree(self.tmp, ignore_errors=True)
        self._ratios()
        self.results["targets"] = [asdict(t) for t in targets.targets(self.results)]
        self.results["loadavg_end"] = report.loadavg()
        self.results["seconds_total"] = round(time.monotonic() - self.started, 1)
        self.results["within_budget"] = self.results["seconds_total"] <= self.o.budget_s
        return self.results

    async def _views_end(self) -> int:
        watch = GroupWatch(self.settings.kafka_client_kwargs(), "unused", self.base_env["VIEWS_TOPIC"])
        await watch.start()
        try:
            return await watch.source_end()
        finally:
            await watch.stop()

    async def _check_broker(self) -> None:
        admin = AIOKafkaAdminClient(request_timeout_ms=5000, **self.settings.kafka_client_kwargs())
        try:
            await asyncio.wait_for(admin.start(), 10)
            await asyncio.wait_for(admin.list_topics(), 10)
        except Exception as exc:  # noqa: BLE001
            raise SystemExit(
                f"no Kafka broker answering at {self.o.bootstrap} ({type(exc).__name__}: {exc}); "
                "start one (`make kafka-up`) or set KAFKA_BOOTSTRAP_SERVERS"
            ) from None
        finally:
            await admin.close()

    async def _preload(self) -> None:
        created = await ensure_topics(self.settings)
        await asyncio.sleep(1.0)  # let the new partitions get their leaders
        o = self.o
        pre = await preload(
            self.settings, seed=o.seed, views=o.views, users=o.users, properties=o.properties,
            segments=o.segments, days=o.days, end_before_now_s=120,
            on_progress=lambda what, n, s: self.say("preload", f"{what}: {rate_text(n, None, s)}"),
        )
        self.results["preload"] = {
            "profiles": pre.profiles,
            "views": pre.views,
            "seconds": round(pre.seconds, 1),
            "first_event": _iso(pre.first_event_ms),
            "last_event": _iso(pre.last_event_ms),
            "topics": {"views": self.base_env["VIEWS_TOPIC"], "profiles": self.base_env["PROFILES_TOPIC"]},
            "created": created,
        }
        self.progress.done("preload", f"{pre.profiles:,} profiles + {pre.views:,} views in {pre.seconds:.1f}s")
        oracle = self.oracle = pre.oracle
        self.sample = answers.sample_hours(oracle, 20, self.settings.hourly_retention_seconds * 1000, o.seed)
        self.weeks = sorted(oracle.weekly)
        self.want = answers.expected(oracle, self.sample, self.weeks)

    async def _stage(self, name: str, work) -> None:  # noqa: ANN001
        meter = report.CpuMeter()
        load = report.loadavg()
        try:
            result = await work
        except Exception as exc:  # noqa: BLE001 - a failed stage is reported, the run goes on
            result = {"finished": False, "problem": f"{type(exc).__name__}: {exc}"[:500]}
        result.update(label=LABELS[name], machine_busy=meter.busy(), loadavg_before=load)
        self.results["stages"][name] = result
        rate = result.get("events_per_s")
        status = "done" if result.get("finished") else f"NOT FINISHED ({result.get('problem', '?')})"
        self.progress.done(name, f"{status}: {_n(rate)} events/s over {result.get('seconds', 0):.1f}s")

    # -- a. ceiling ---------------------------------------------------------------------
    async def _ceiling(self, n: int) -> dict:
        result = await ceiling.consume_all(
            self.settings.kafka_client_kwargs(), self.base_env["VIEWS_TOPIC"],
            self.settings.max_fetch_bytes,
            self.limit("ceiling"), lambda c, s: self.say("ceiling", rate_text(c, n, s)),
        )
        counted = result["events"] - result["events_at_start"]
        result["events_per_s"] = round(counted / result["seconds"]) if result["seconds"] else None
        result["cpu_share"] = round(result["cpu_seconds"] / result["seconds"], 2) if result["seconds"] else None
        if not result["finished"]:
            result["problem"] = f"time limit: {result['events']:,} of {n:,} events"
        return result

    # -- b. floor -----------------------------------------------------------------------
    async def _floor(self, n: int) -> dict:
        proc = self._start(faust_worker("floor", "bench.floor_app", self.env("floor"), self.tmp, self.logs))
        try:
            await wait_http(proc, "/bench/floor", 120)
            limit = self.limit("floor")
            started = time.monotonic()
            stats: dict = {}
            cpu_first = None
            problem = None
            while True:
                _, stats = await get_json(proc.url + "/bench/floor")
                if stats["count"] and cpu_first is None:
                    cpu_first = (proc.cpu_seconds(), time.time())
                if stats["first"]:
                    self.say("floor", rate_text(stats["count"], n, time.time() - stats["first"]))
                if stats["count"] >= n:
                    break
                if not proc.alive:
                    problem = "worker exited"
                    break
                if time.monotonic() - started > limit:
                    problem = f"time limit {limit:.0f}s: {stats['count']:,} of {n:,} events"
                    break
                await asyncio.sleep(POLL_S)
            cpu_end = proc.cpu_seconds()
            seconds = (stats["last"] - stats["first"]) if stats.get("first") else 0.0
            counted = stats["count"] - stats["atFirst"]
            result = {
                "events": stats["count"],
                "seconds": round(seconds, 2),
                "events_per_s": round(counted / seconds) if seconds else None,
                "finished": problem is None,
                "mode": stats.get("mode"),
                "rss_peak_bytes": proc.peak_rss(),
                "cpu_share": _share(cpu_first, cpu_end, stats.get("last")),
            }
            if problem:
                result["problem"] = problem
            return result
        finally:
            proc.stop()

    # -- c/e. the product ---------------------------------------------------------------
    async def _pipeline(self, stage: str, workers: int, n: int, with_latency: bool) -> dict:
        name = "p1" if workers == 1 else f"p{workers}"
        env = self.env(name)
        procs = [
            self._start(faust_worker(f"{name}-w{i}", "app.main", env, self.tmp, self.logs))
            for i in range(workers)
        ]
        try:
            profiling = stage == "pipeline" and self.runs("profile")

            async def extra(watch: GroupWatch) -> list[str]:
                return [f"{env['APP_ID']}-views-by-user-repartition"]

            result = await self._watch(
                stage, procs, env["APP_ID"], n, extra, profile_pid=procs[0].pid if profiling else None
            )
            result["workers"] = workers
            if self.want is not None and result.get("finished"):
                got = await answers.from_product(procs[0].url, self.sample, self.weeks, self.want)
                self.results["checks"][stage] = answers.compare(got, self.want)
                self.results["checks"][stage]["against"] = "oracle"
                self._product_answers = got
            if with_latency and self.runs("latency") and result.get("finished"):
                await self._latency(stage, procs, result.get("events_per_s"))
            result["rss_peak_bytes"] = max((p.peak_rss() or 0) for p in procs) or None
            result["rss_peak_bytes_each"] = [p.peak_rss() for p in procs]
            return result
        finally:
            for proc in procs:
                proc.stop()

    # -- d. Quix Streams ----------------------------------------------------------------
    async def _quix(self, n: int) -> dict:
        group = f"bench-{self.tag}-quix"
        env = {
            **self.base_env,
            "QUIX_GROUP": group,
            "QUIX_STATE_DIR": str(self.tmp / "quix-state"),
            "QUIX_OUTPUT_PREFIX": group,
            "QUIX_GUARANTEE": self.o.quix_guarantee,
            "QUIX_COMMIT_INTERVAL": "1.0",
        }
        proc = self._start(Proc("quix", [sys.executable, "-m", "bench.peers.quix_pipeline"], env, self.logs / "quix.log"))
        try:
            async def extra(watch: GroupWatch) -> list[str]:
                return await watch.topics_with_prefix(f"repartition__{group}--")

            result = await self._watch("quix", [proc], group, n, extra)
            result["guarantee"] = self.o.quix_guarantee
            result["note"] = f"{self.o.quix_guarantee}, commit every 1 s"
            result["rss_peak_bytes"] = proc.peak_rss()
            if self.want is not None and result.get("finished"):
                got = await answers.from_quix(self.settings.kafka_client_kwargs(), group, self.sample, self.weeks)
                self.results["checks"]["quix"] = {**answers.compare(got, self.want), "against": "oracle"}
                ours = getattr(self, "_product_answers", None)
                if ours is not None:
                    # hourly only: the sample leaves out the hour of the live views, weeks do not
                    check = answers.compare((got[0], {}), (ours[0], {}))
                    self.results["checks"]["quix_vs_pipeline"] = {**check, "against": "pipeline, 1 worker (hourly sample)"}
            return result
        finally:
            proc.stop()

    # -- shared: watch a consumer group until it has caught up -----------------------------
    async def _watch(self, stage: str, procs: list[Proc], group: str, n: int, extra, profile_pid=None) -> dict:  # noqa: ANN001
        limit = self.limit(stage)
        watch = GroupWatch(self.settings.kafka_client_kwargs(), group, self.base_env["VIEWS_TOPIC"])
        await watch.start()
        launched = time.monotonic()
        first = None  # (monotonic time, processed, cpu seconds, wall time)
        end = None
        # RSS of the first process as the state grows: at 25, 50, 75 and 100 % of the input
        rss_at: dict[str, int | None] = {}  # str keys: the results are JSON
        rocksdb_at: dict[str, dict[str, float] | None] = {}  # its RocksDB part, by kind
        # (seconds since the first event, events) at each quarter: does the rate hold as state grows?
        progress_at: dict[str, list[float]] = {}
        problem = None
        spy = None
        try:
            while True:
                dead = [p for p in procs if not p.alive]
                if dead:
                    problem = f"{dead[0].name} exited; see {dead[0].log_path}"
                    break
                watch.extra_topics = await extra(watch)
                state = await watch.poll()
                now = time.monotonic()
                if first is None and state.processed > 0:
                    first = (now, state.processed, _cpu(procs))
                    progress_at["0"] = [0.0, state.processed]
                for quarter in (25, 50, 75, 100):
                    if str(quarter) not in rss_at and state.processed * 100 >= quarter * n:
                        rss_at[str(quarter)] = procs[0].rss()
                        rocksdb_at[str(quarter)] = await rocksdb_memory(procs[0])
                        if first is not None:
                            progress_at[str(quarter)] = [round(now - first[0], 2), state.processed]
                if first is not None:
                    elapsed = now - first[0]
                    self.say(stage, rate_text(state.processed, n, elapsed) + f", {state.behind_tps} partitions behind")
                    if profile_pid and spy is None and elapsed >= 3 and state.processed > first[1]:
                        spy = self._start_profile(profile_pid, state.processed, n, (state.processed - first[1]) / elapsed)
                else:
                    self.say(stage, f"starting ({now - launched:.0f}s)")
                if state.caught_up and state.processed >= n:
                    end = (now, state.processed, _cpu(procs))
                    break
                if now - launched > limit:
                    problem = f"time limit {limit:.0f}s: {state.processed:,} of {n:,} events committed"
                    if state.behind:
                        problem += "; behind: " + ", ".join(state.behind)
                    end = (now, state.processed, _cpu(procs))
                    break
                await asyncio.sleep(POLL_S)
        finally:
            await watch.stop()
            if spy is not None:
                await self._finish_profile(*spy)
        result: dict = {
            "finished": problem is None,
            "startup_s": round(first[0] - launched, 1) if first else None,
            "rss_bytes_at_input_percent": rss_at,
            "rocksdb_bytes_at_input_percent": rocksdb_at,
            "events_per_s_by_half": _rate_by_half(progress_at),
        }
        if problem:
            result["problem"] = problem
        if first and end and end[0] > first[0]:
            seconds = end[0] - first[0]
            result.update(
                events=end[1],
                events_at_start=first[1],
                seconds=round(seconds, 2),
                events_per_s=round((end[1] - first[1]) / seconds),
                cpu_share=round((end[2] - first[2]) / seconds, 2) if end[2] is not None and first[2] is not None else None,
                wall_s=round(end[0] - launched, 1),
            )
        return result

    # -- latency --------------------------------------------------------------------------
    async def _latency(self, stage: str, procs: list[Proc], max_rate: float | None) -> None:
        if not max_rate:
            return
        owners: dict[int, str] = {}
        for proc in procs:
            _, body = await get_json(proc.url + "/ready")
            for partition in body.get("partitions", {}).get("views", []):
                owners[partition] = proc.url
        rate = self.o.latency_rate or max(max_rate / 2, 1.0)
        result = await self._measure_live(owners, rate, self.tag)
        # later stages see the live views too: expect them in their answers
        self.want_before_live = self.want
        self.want = answers.expected(self.oracle, self.sample, self.weeks)
        result.update(stage=stage, workers=len(procs))
        self.results["latency"] = result
        self.progress.done(
            "latency",
            f"p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms at {rate:,.0f} views/s "
            f"({result.get('samples')} samples, {result.get('not_seen')} not seen)"
            + report.series_note(result),
        )
        if self.o.curve or self.o.curve_rates:
            await self._latency_curve(stage, procs, owners, max_rate)

    async def _measure_live(
        self, owners: dict[int, str], rate: float, tag: str, seconds: float | None = None
    ) -> dict:
        """Live views at ``rate`` for ``seconds`` (``--latency-seconds``); the oracle counts
        them too."""
        seconds = seconds or self.o.latency_s
        # The live views carry the clock's time: none is in the future by the end of the stage.
        self.oracle.now_ms = int((time.time() + seconds) * 1000)
        return await latency.measure(
            client_kwargs=self.settings.kafka_client_kwargs(),
            views_topic=self.base_env["VIEWS_TOPIC"],
            partitions=self.o.partitions,
            owners=owners,
            rate=rate,
            duration_s=seconds,
            users=self.o.users,
            properties=self.o.properties,
            tag=tag,
            on_progress=lambda text: self.say("latency", text),
            on_acked=lambda partition, offset, record: self.oracle.add_view(partition, offset, record[0], record[1]),
        )

    async def _latency_curve(
        self, stage: str, procs: list[Proc], owners: dict[int, str], max_rate: float
    ) -> None:
        """p50/p99 at each share of ``max_rate`` in ``--curve`` and each rate in
        ``--curve-rates``, lowest rate first."""
        steps = [(max(max_rate * share, 1.0), False) for share in self.o.curve]
        steps += [(rate, True) for rate in self.o.curve_rates]
        points = []
        for rate, fixed in sorted(steps):
            share = rate / max_rate
            result = await self._measure_live(owners, rate, f"{self.tag}c{len(points)}", self.o.curve_s)
            point = curve_point(result, share, fixed, rate)
            points.append(point)
            self.progress.done(
                "latency",
                f"curve {report.point_label(point)}: p50 {point['p50_ms']} ms, p99 {point['p99_ms']} ms "
                f"at {rate:,.0f} views/s" + report.series_note(result),
            )
        self.want_before_live = self.want
        self.want = answers.expected(self.oracle, self.sample, self.weeks)
        self.results["latency_curve"] = {"stage": stage, "workers": len(procs),
                                         "max_rate": max_rate, "points": points}

    # -- profile --------------------------------------------------------------------------
    def _start_profile(self, pid: int, processed: int, n: int, rate: float):  # noqa: ANN202
        remaining_s = (n - processed) / rate if rate > 0 else 0
        seconds = int(min(20, remaining_s * 0.8))
        if seconds < 2:
            return None
        raw = self.logs / f"profile-{self.stamp}.raw.txt"
        return profile.start_record(pid, seconds, raw), raw, seconds

    async def _finish_profile(self, proc, raw: Path, seconds: int) -> None:  # noqa: ANN001
        for _ in range(seconds * 10 + 100):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
        if not raw.exists():
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            self.results["profile"] = {"error": f"py-spy wrote nothing: {err[-300:]}"}
            return
        summary = report.RESULTS / f"profile-{self.stamp}.txt"
        svg = report.RESULTS / f"profile-{self.stamp}.svg"
        header = (
            f"py-spy record --threads --nonblocking (busy samples only), {seconds} s of the 1-worker pipeline (stage c) while it "
            f"caught up; run {self.tag}, {self.results['date']}\n\n"
        )
        summary.write_text(header + profile.summarize(raw))
        profile.render_svg(raw, svg, f"faust -A app.main worker, stage c, {seconds} s")
        self.results["profile"] = {
            "seconds": seconds,
            "summary": str(summary.relative_to(report.RESULTS.parent.parent)),
            "svg": str(svg.relative_to(report.RESULTS.parent.parent)),
        }

    # -- bookkeeping ------------------------------------------------------------------------
    def _start(self, proc: Proc) -> Proc:
        self.procs.append(proc.start())
        return proc

    def _ratios(self) -> None:
        stages = self.results["stages"]
        top = (stages.get("ceiling") or {}).get("events_per_s")
        quix = (stages.get("quix") or {}).get("events_per_s")
        for stage in stages.values():
            rate = stage.get("events_per_s")
            stage["ratio_to_ceiling"] = round(rate / top, 4) if rate and top else None
            stage["ratio_to_quix"] = round(rate / quix, 3) if rate and quix else None
            per_cpu = report.per_cpu_second(stage)
            stage["events_per_cpu_s"] = round(per_cpu) if per_cpu else None

def _cpu(procs: list[Proc]) -> float | None:
    values = [p.cpu_seconds() for p in procs]
    return None if any(v is None for v in values) else sum(values)


def _share(first, cpu_end, last_wall) -> float | None:  # noqa: ANN001
    if not first or first[0] is None or cpu_end is None or not last_wall or last_wall <= first[1]:
        return None
    return round((cpu_end - first[0]) / (last_wall - first[1]), 2)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _n(value) -> str:  # noqa: ANN001
    return f"{value:,.0f}" if value else "-"


def _rate_by_half(progress_at: dict[str, list[float]]) -> dict[str, int] | None:
    """Events/s over the first and the second half of the input (from the quarter marks)."""
    if "50" not in progress_at or "100" not in progress_at:
        return None
    (t0, n0), (t50, n50), (t100, n100) = (progress_at.get(q, [0.0, 0]) for q in ("0", "50", "100"))
    rates = {}
    if t50 > t0:
        rates["first"] = round((n50 - n0) / (t50 - t0))
    if t100 > t50:
        rates["second"] = round((n100 - n50) / (t100 - t50))
    return rates


def curve_point(result: dict, share: float, fixed: bool, rate: float) -> dict:
    """One point of the latency curve from ``latency.measure``'s result: the committed series
    (``p50_ms``, ``p99_ms``), the latest one (``latest_*``) and the atLeast probe
    (``at_least_*``) when they were measured."""
    point = {"share": round(share, 4), "fixed_rate": fixed, "rate_target": round(rate), **{
        k: result.get(k) for k in ("rate_achieved", "p50_ms", "p99_ms", "samples", "not_seen")}}
    for series in ("latest", "at_least"):
        for key, value in (result.get(series) or {}).items():
            if key in ("p50_ms", "p99_ms", "samples"):
                point[f"{series}_{key}"] = value
    return point
