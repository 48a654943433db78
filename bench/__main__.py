"""``python -m bench``: the benchmark of CONTRACT §7 (``make bench``). See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shlex
import sys

from bench import arguments, procs, report, targets
from bench.run import STAGES, Bench, Options


# The latency-throughput curve of a full run: shares of the 1-worker pipeline's measured
# rate, and the demo's fixed rate (the latency targets are at 200 views/s and at half load).
DEFAULT_CURVE = (0.1, 0.25, 0.5, 0.75, 0.9)
DEFAULT_CURVE_RATES = (200.0,)


def _csv(values: tuple[float, ...]) -> str:
    return ",".join(f"{value:g}" for value in values)


def _numbers(
    parser: argparse.ArgumentParser, flag: str, text: str | None, default: tuple[float, ...]
) -> tuple[float, ...]:
    """A comma-separated list of numbers; ``default`` when not given, () for 'none'."""
    if text is None:
        return default
    if text.strip().lower() == "none":
        return ()
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        values = (math.nan,)
    if not all(math.isfinite(value) for value in values):
        parser.error(f"{flag} takes comma-separated numbers or 'none' (got {text!r})")
    return values


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    arguments.add_workload(parser, views=None, views_help="views to preload (default 500000; 50000 with --quick)",
                           users=50_000, days=3.0)
    parser.add_argument("--skip", action="append", default=[], choices=STAGES, metavar="STAGE",
                        help=f"leave out a stage (repeatable): {', '.join(STAGES)}")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 50000 views, 10 s of latency")
    parser.add_argument("--budget", type=float, default=1200.0, help="seconds for the whole run (default 20 min)")
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="views/s of the latency stage (default: half the 1-worker pipeline's rate)")
    parser.add_argument("--latency-seconds", type=float, default=None, help="live production time (default 30; 10 with --quick)")
    parser.add_argument("--curve", default=None,
                        help="comma-separated shares of the measured maximum at which to measure latency too "
                             "(the latency-throughput curve, table and PNG; default "
                             f"{_csv(DEFAULT_CURVE)}, none with --quick; 'none' for no curve)")
    parser.add_argument("--curve-rates", default=None,
                        help="comma-separated fixed live rates in views/s added to the curve (default "
                             f"{_csv(DEFAULT_CURVE_RATES)}, the demo's rate; none with --quick; 'none' for none)")
    parser.add_argument("--curve-seconds", type=float, default=None,
                        help="live production time of each curve point (default 15; 10 with --quick)")
    parser.add_argument("--quix-guarantee", default="exactly-once", choices=("exactly-once", "at-least-once"))
    args = parser.parse_args(argv)
    arguments.require_positive(parser, args, ("views", "properties", "users", "segments", "partitions", "days",
                                              "budget", "latency_rate", "latency_seconds", "curve_seconds"))
    full_run = not args.quick
    curve = _numbers(parser, "--curve", args.curve, DEFAULT_CURVE if full_run else ())
    if not all(0 < share <= 1 for share in curve):
        parser.error(f"--curve shares must be in (0, 1] (got {args.curve!r})")
    curve_rates = _numbers(parser, "--curve-rates", args.curve_rates, DEFAULT_CURVE_RATES if full_run else ())
    if not all(rate > 0 for rate in curve_rates):
        parser.error(f"--curve-rates must be greater than 0 (got {args.curve_rates!r})")
    if args.views is None:
        args.views = 50_000 if args.quick else 500_000
    command = shlex.join([os.path.basename(sys.executable), "-m", "bench", *argv])
    return Options(
        **arguments.workload(args, command),
        skip=set(args.skip),
        quick=args.quick,
        budget_s=args.budget,
        latency_rate=args.latency_rate,
        latency_s=args.latency_seconds if args.latency_seconds is not None else (10.0 if args.quick else 30.0),
        curve=curve,
        curve_rates=curve_rates,
        curve_s=args.curve_seconds if args.curve_seconds is not None else (10.0 if args.quick else 15.0),
        quix_guarantee=args.quix_guarantee,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse(sys.argv[1:] if argv is None else argv)
    # Whatever stops the benchmark stops the workers it started (bench/procs.py).
    procs.guard_children()
    procs.die_with_parent()
    bench = Bench(options)
    results = asyncio.run(bench.run())
    paths = report.write(results, bench.stamp)
    print()
    print(report.table(results))
    print()
    for line in summary_lines(results):
        print(line)
    if results.get("latency_curve"):
        print()
        print(report.curve_table(results["latency_curve"]))
    print()
    print(targets.table(targets.targets(results)))
    print("results: " + ", ".join(str(p.relative_to(report.RESULTS.parent.parent)) for p in paths))
    return 0


def summary_lines(results: dict) -> list[str]:
    lines = []
    pre = results.get("preload", {})
    lines.append(
        f"workload: {pre.get('profiles', 0):,} profiles, {pre.get('views', 0):,} views "
        f"from {pre.get('first_event')} to {pre.get('last_event')}, run {results['run_id']} on {results['broker']}"
    )
    for name, check in results.get("checks", {}).items():
        verdict = "OK" if check["equal"] == check["checked"] else "MISMATCH"
        what = (
            f"{check['hourly']} (property, hour) + {check['weekly']} (segment, week) answers"
            if "hourly" in check
            else "sampled (property, hour) counts and every (segment, week)"
        )
        lines.append(f"answers {name} vs {check['against']}: {check['equal']}/{check['checked']} equal ({what}) {verdict}")
        for miss in check.get("mismatches", [])[:3]:
            lines.append(f"  {miss}")
    lat = results.get("latency")
    if lat:
        if results["parameters"].get("latency_rate"):
            basis = "set by --latency-rate"
        else:
            basis = f"half of stage {lat.get('stage')}'s rate"
        lines.append(
            f"latency ({lat.get('workers')} worker(s)): p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms at "
            f"{lat.get('rate_achieved', 0):,.0f} views/s (target {lat.get('rate_target', 0):,.0f}, {basis}) "
            f"for {lat.get('seconds', 0):.0f} s; {lat.get('samples')} samples, "
            + report.asked_note(lat)
            + report.series_note(lat)
        )
    growth = results["stages"].get("pipeline", {}).get("rss_bytes_at_input_percent") or {}
    if growth:
        steps = " / ".join(
            f"{int(rss) / 2**20:.0f}" if rss else "?" for _, rss in sorted(growth.items(), key=lambda i: int(i[0]))
        )
        lines.append(f"RSS of the 1-worker pipeline at {' / '.join(f'{int(q)}' for q in sorted(growth, key=int))} % of the input: {steps} MiB")
    native = results["stages"].get("pipeline", {}).get("rocksdb_bytes_at_input_percent") or {}
    if any(native.values()):
        steps = " / ".join(
            "+".join(f"{kinds.get(k, 0) / 2**20:.0f}" for k in ("memtables", "table_readers", "block_cache"))
            if kinds else "?"
            for _, kinds in sorted(native.items(), key=lambda i: int(i[0]))
        )
        lines.append(f"of which RocksDB (memtables+table readers+block cache): {steps} MiB")
    halves = results["stages"].get("pipeline", {}).get("events_per_s_by_half") or {}
    if len(halves) == 2:
        lines.append(
            f"1-worker pipeline events/s, first / second half of the input: {halves['first']:,} / {halves['second']:,}"
            f" ({halves['second'] / halves['first']:.2f}x)"
        )
    prof = results.get("profile")
    if prof:
        lines.append(f"profile: {prof.get('summary') or prof.get('error')}")
    m = results["machine"]
    lines.append(
        f"machine: {m['nproc']} cpu ({m['cpu_model']}), {m['memory_bytes'] / 2**30:.1f} GiB; "
        f"load average {results['loadavg_start']} -> {results.get('loadavg_end')}; "
        f"total {results.get('seconds_total')} s (budget {results['parameters']['budget_s']:.0f} s"
        + ("" if results.get("within_budget") else ", EXCEEDED") + ")"
    )
    return lines


if __name__ == "__main__":
    sys.exit(main())
