"""The speed targets, read from one run's results: ratios within the run, since the machine is
noisy. Each target says what it measured and whether it is met (None: not measured in this
run, e.g. a stage skipped).

The 5M-view scale target compares two runs (a 5M run against a 500k run), so it is not here.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 2**20
DEMO_RATE = 200  # views/s, the demo's live rate
RSS_LIMIT_BYTES = 400 * 10**6  # the target's 400 MB, in decimal megabytes


@dataclass(frozen=True)
class Target:
    name: str
    want: str
    measured: str
    met: bool | None

    def row(self) -> str:
        verdict = {True: "yes", False: "no", None: "not measured"}[self.met]
        return f"| {self.name} | {self.want} | {self.measured} | {verdict} |"


def targets(results: dict) -> list[Target]:
    stages = results.get("stages", {})
    one = _rate(stages, "pipeline")
    return [
        _ratio("1 worker against the Quix Streams peer", one, _rate(stages, "quix"), 2.0),
        _ratio("1 worker against faust's no-op agent", one, _rate(stages, "floor"), 1.5),
        _ratio("2 workers against 1", _rate(stages, "pipeline2"), one, 1.6),
        _rss(stages),
        _half_load(results),
        _demo_rate(results),
        _latest_third(results),
        _at_least_overhead(results),
    ]


def table(found: list[Target]) -> str:
    lines = ["| target | wanted | measured | met |", "|---|---|---|---|"]
    return "\n".join(lines + [t.row() for t in found])


def _rate(stages: dict, name: str) -> float | None:
    return (stages.get(name) or {}).get("events_per_s") or None


def _ratio(name: str, rate: float | None, base: float | None, least: float) -> Target:
    want = f"at least {least:.1f} x"
    if not rate or not base:
        return Target(name, want, "-", None)
    ratio = rate / base
    return Target(name, want, f"{ratio:.2f} x ({rate:,.0f} / {base:,.0f} events/s)", ratio >= least)


def _rss(stages: dict) -> Target:
    want = f"under {RSS_LIMIT_BYTES // 10**6} MB"
    peaks = [
        peak
        for name in ("pipeline", "pipeline2")
        for peak in (stages.get(name) or {}).get("rss_peak_bytes_each") or []
        if peak
    ]
    if not peaks:
        return Target("worker RSS (peak)", want, "-", None)
    peak = max(peaks)
    measured = f"{peak / 10**6:.1f} MB ({peak / MIB:.0f} MiB)"
    return Target("worker RSS (peak)", want, measured, peak < RSS_LIMIT_BYTES)


def _half_load(results: dict) -> Target:
    name, want = "p99 latency at half load, after the catch-up", "under 250 ms"
    latency = results.get("latency") or {}
    if latency.get("p99_ms") is None or (results.get("parameters") or {}).get("latency_rate"):
        return Target(name, want, "-", None)  # not run, or run at a rate set by hand
    return Target(
        name, want, f"{latency['p99_ms']:,.0f} ms at {latency.get('rate_achieved', 0):,.0f} views/s",
        latency["p99_ms"] < 250,
    )


def _demo_rate(results: dict) -> Target:
    name, want = f"p99 latency at {DEMO_RATE} views/s", "under 100 ms"
    points = (results.get("latency_curve") or {}).get("points") or []
    point = next(
        (p for p in points if p.get("fixed_rate") and p.get("rate_target") == DEMO_RATE), None
    )
    if point is None or point.get("p99_ms") is None:
        return Target(name, want, "-", None)
    return Target(name, want, f"{point['p99_ms']:,.0f} ms (p50 {point['p50_ms']:,.0f} ms)", point["p99_ms"] < 100)


LATEST_SHARE = 1 / 3  # latest p99 at most this share of the committed p99, at every point
AT_LEAST_OVERHEAD_MS = 20.0  # atLeast p99 at most the committed p99 plus this


def _measured_points(results: dict, key: str) -> list[dict]:
    points = (results.get("latency_curve") or {}).get("points") or []
    return [p for p in points if p.get("p99_ms") is not None and p.get(key) is not None]


def _latest_third(results: dict) -> Target:
    name, want = "latest p99 against committed p99, every curve point", "at most 1/3"
    points = _measured_points(results, "latest_p99_ms")
    if not points:
        return Target(name, want, "-", None)
    worst = max(points, key=lambda p: p["latest_p99_ms"] / max(p["p99_ms"], 1e-9))
    ratio = worst["latest_p99_ms"] / max(worst["p99_ms"], 1e-9)
    measured = (
        f"worst {ratio:.2f} ({worst['latest_p99_ms']:,.0f} / {worst['p99_ms']:,.0f} ms "
        f"at {worst['rate_target']:,} views/s)"
    )
    return Target(name, want, measured, all(
        p["latest_p99_ms"] <= p["p99_ms"] * LATEST_SHARE for p in points
    ))


def _at_least_overhead(results: dict) -> Target:
    name = "atLeast on the record's own metadata: p99 produce -> answer"
    want = f"at most committed p99 + {AT_LEAST_OVERHEAD_MS:.0f} ms"
    points = _measured_points(results, "at_least_p99_ms")
    if not points:
        return Target(name, want, "-", None)
    worst = max(points, key=lambda p: p["at_least_p99_ms"] - p["p99_ms"])
    over = worst["at_least_p99_ms"] - worst["p99_ms"]
    measured = (
        f"worst {over:+,.0f} ms ({worst['at_least_p99_ms']:,.0f} against {worst['p99_ms']:,.0f} ms "
        f"at {worst['rate_target']:,} views/s)"
    )
    return Target(name, want, measured, all(
        p["at_least_p99_ms"] <= p["p99_ms"] + AT_LEAST_OVERHEAD_MS for p in points
    ))
