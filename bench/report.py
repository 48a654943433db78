"""The results: machine facts, the table on stdout, and the JSON files under bench/results/."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import orjson

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("faust-streaming", "aiokafka", "quixstreams", "confluent-kafka", "rocksdict", "orjson", "uvloop")


def code_version() -> dict:
    """The commit under test, and whether app/ had uncommitted changes (the workers run the
    working tree, so those are part of what was measured)."""
    import subprocess

    repo = RESULTS.parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            return ""

    dirty = git("status", "--porcelain", "--", "app")
    return {"commit": git("rev-parse", "HEAD") or None, "app_dirty": bool(dirty), "app_changes": dirty.splitlines()[:20]}


def machine() -> dict:
    cpu_model = None
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kib = None
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": os.cpu_count(),
        "memory_bytes": mem_kib * 1024 if mem_kib else None,
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "packages": versions,
    }


class CpuMeter:
    """Whole-machine CPU use between two readings of /proc/stat (all cores, 0..1)."""

    def __init__(self) -> None:
        self._start = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    def busy(self) -> float | None:
        busy0, total0 = self._start
        busy1, total1 = self._read()
        return round((busy1 - busy0) / (total1 - total0), 3) if total1 > total0 else None


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def header(command: str, broker: str) -> dict:
    """What every results file begins with: when, how it was run, where, and on which code."""
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "command": command,
        "broker": broker,
        "machine": machine(),
        "code": code_version(),
        "loadavg_start": loadavg(),
    }


def write(results: dict, stamp: str) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    body = orjson.dumps(
        results, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    ) + b"\n"
    paths = [RESULTS / "latest.json", RESULTS / f"{stamp}.json"]
    for path in paths:
        path.write_bytes(body)
    curve = results.get("latency_curve")
    if curve and curve.get("points"):
        paths += plot_curve(curve, [RESULTS / "latency-curve.png", RESULTS / f"latency-curve-{stamp}.png"])
    return paths


def curve_table(curve: dict) -> str:
    """The latency-throughput curve as a markdown table: the committed series, and the latest
    series and the atLeast probe when the run measured them."""
    points = curve["points"]
    latest = any("latest_p99_ms" in p for p in points)
    at_least = any("at_least_p99_ms" in p for p in points)
    head = "| load | views/s (target / achieved) | p50 ms | p99 ms | samples |"
    rule = "|---|---|---|---|---|"
    if latest:
        head += " latest p50 ms | latest p99 ms |"
        rule += "---|---|"
    if at_least:
        head += " atLeast p50 ms | atLeast p99 ms |"
        rule += "---|---|"
    lines = [head, rule]
    for point in points:
        line = (
            f"| {point_label(point)} | {_fmt(point['rate_target'])} / {_fmt(point.get('rate_achieved'))} "
            f"| {_fmt(point.get('p50_ms'))} | {_fmt(point.get('p99_ms'))} | {_fmt(point.get('samples'))} |"
        )
        if latest:
            line += f" {_fmt(point.get('latest_p50_ms'))} | {_fmt(point.get('latest_p99_ms'))} |"
        if at_least:
            line += f" {_fmt(point.get('at_least_p50_ms'))} | {_fmt(point.get('at_least_p99_ms'))} |"
        lines.append(line)
    return "\n".join(lines)


def asked_note(result: dict) -> str:
    """How the probes asked for their counts in one measurement."""
    interval = result.get("poll_interval_ms")
    if interval is None:
        return "asked at each move of the partition (atLeast past the last answer)"
    return f"poll every {interval:.0f} ms"


def series_note(result: dict) -> str:
    """The latest series and the atLeast probe of one measurement, for a progress line."""
    parts = []
    for key, label in (("latest", "latest"), ("at_least", "atLeast")):
        series = result.get(key) or {}
        if series.get("p99_ms") is not None:
            parts.append(f"{label} p50 {series['p50_ms']} ms, p99 {series['p99_ms']} ms")
    return "; " + "; ".join(parts) if parts else ""


def point_label(point: dict) -> str:
    """A curve point's load: its share of the maximum, or its fixed rate and that share."""
    if point.get("fixed_rate"):
        return f"{point['rate_target']:,}/s ({point['share']:.0%} of max)"
    return f"{point['share']:.0%} of max"


SERIES = (("committed", "", "-"), ("latest", "latest_", "--"), ("atLeast", "at_least_", ":"))


def curve_series(points: list[dict]) -> dict[str, tuple[str, str, list[float]]]:
    """The lines of the plot: label -> (line style, marker, ms per point, NaN where a point
    lacks it); the latest and atLeast ones only when some point has them."""
    out = {}
    for name, prefix, style in SERIES:
        if not any(p.get(f"{prefix}p99_ms") is not None for p in points):
            continue
        for q, marker in (("p50", "o"), ("p99", "s")):
            values = [p.get(f"{prefix}{q}_ms") for p in points]
            out[f"{name} {q}"] = (style, marker, [float("nan") if v is None else v for v in values])
    return out


def plot_curve(curve: dict, paths: list[Path]) -> list[Path]:
    """p50 and p99 against the achieved rate, as PNG (matplotlib, from the bench extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # the bench extra not installed: the table in the JSON is still there
        return []
    points = [p for p in curve["points"] if p.get("p50_ms") is not None]
    rates = [p.get("rate_achieved") or p["rate_target"] for p in points]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, (style, marker, values) in curve_series(points).items():
        axes.plot(rates, values, linestyle=style, marker=marker, label=label)
    for point, rate in zip(points, rates):
        label = f"{point['rate_target']}/s" if point.get("fixed_rate") else f"{point['share']:.0%}"
        axes.annotate(label, (rate, point["p99_ms"]), textcoords="offset points",
                      xytext=(0, 6), ha="center", fontsize=8)
    axes.set_xlabel("live views/s (share of the measured maximum)")
    axes.set_ylabel("produce -> count visible over HTTP, ms")
    axes.set_yscale("log")
    axes.set_title(f"{curve['workers']} worker(s), max {curve['max_rate']:,.0f} views/s")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    for path in paths:
        figure.savefig(path)
    plt.close(figure)
    return paths


def _fmt(value, spec: str = ",.0f", none: str = "-") -> str:  # noqa: ANN001
    return none if value is None else format(value, spec)


def per_cpu_second(stage: dict) -> float | None:
    """Events per CPU-second of the measured process(es): comparable across a busy machine,
    where events/s depends on how much CPU the stage got (the broker's CPU is not in it)."""
    rate, share = stage.get("events_per_s"), stage.get("cpu_share")
    return rate / share if rate and share else None


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def table(results: dict) -> str:
    stages = results["stages"]
    latency = results.get("latency") or {}
    header = ["stage", "events", "seconds", "events/s", "x ceiling", "x quix", "lat p50 ms", "lat p99 ms",
              "peak RSS MiB", "CPU", "events/CPU-s", "notes"]
    rows = []
    for name, stage in sorted(stages.items(), key=lambda item: item[1].get("label", item[0])):
        lat = latency if latency.get("stage") == name else {}
        rss = stage.get("rss_peak_bytes")
        notes = []
        if not stage.get("finished", False):
            notes.append(stage.get("problem") or "did not finish")
        if stage.get("note"):
            notes.append(stage["note"])
        rows.append([
            stage.get("label", name),
            _fmt(stage.get("events")),
            _fmt(stage.get("seconds"), ".1f"),
            _fmt(stage.get("events_per_s")),
            _fmt(stage.get("ratio_to_ceiling"), ".3f"),
            _fmt(stage.get("ratio_to_quix"), ".2f"),
            _fmt(lat.get("p50_ms"), ".0f"),
            _fmt(lat.get("p99_ms"), ".0f"),
            _fmt(rss / 2**20 if rss else None, ".0f"),
            _fmt(stage.get("cpu_share"), ".0%"),
            _fmt(per_cpu_second(stage)),
            _clip("; ".join(notes), 90),
        ])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) if i in (0, 11) else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
