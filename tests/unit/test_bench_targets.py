"""The speed targets as one benchmark run's results report them (bench/targets.py)."""

import math

from bench import report
from bench.run import curve_point
from bench.targets import MIB, table, targets


def results(**overrides) -> dict:
    base = {
        "parameters": {"latency_rate": None},
        "stages": {
            "floor": {"events_per_s": 3_000},
            "pipeline": {"events_per_s": 6_000, "rss_peak_bytes_each": [300 * MIB]},
            "quix": {"events_per_s": 2_000},
            "pipeline2": {"events_per_s": 11_000, "rss_peak_bytes_each": [280 * MIB, 381 * MIB]},
        },
        "latency": {"p99_ms": 240.0, "rate_achieved": 3_000.0},
        "latency_curve": {"points": [
            {"share": 0.1, "fixed_rate": False, "rate_target": 600, "p50_ms": 50.0, "p99_ms": 400.0,
             "latest_p50_ms": 20.0, "latest_p99_ms": 120.0,
             "at_least_p50_ms": 45.0, "at_least_p99_ms": 410.0},
            {"share": 0.0333, "fixed_rate": True, "rate_target": 200, "p50_ms": 40.0, "p99_ms": 90.0,
             "latest_p50_ms": 10.0, "latest_p99_ms": 30.0,
             "at_least_p50_ms": 35.0, "at_least_p99_ms": 110.0},
        ]},
    }
    base.update(overrides)
    return base


def by_name(found):
    return {t.name: t for t in found}


def test_every_target_met():
    found = by_name(targets(results()))
    assert {name: t.met for name, t in found.items()} == {
        "1 worker against the Quix Streams peer": True,  # 3.0 x
        "1 worker against faust's no-op agent": True,  # 2.0 x
        "2 workers against 1": True,  # 1.83 x
        "worker RSS (peak)": True,  # 381 MiB (399.5 MB), the largest of all workers
        "p99 latency at half load, after the catch-up": True,
        "p99 latency at 200 views/s": True,  # the fixed-rate point, not the 10 % one
        "latest p99 against committed p99, every curve point": True,  # 120/400, 30/90 (= 1/3)
        "atLeast on the record's own metadata: p99 produce -> answer": True,  # +10, +20 ms
    }
    assert found["latest p99 against committed p99, every curve point"].measured.startswith(
        "worst 0.33 (30 / 90 ms at 200 views/s)"
    )
    assert found["1 worker against the Quix Streams peer"].measured.startswith("3.00 x")
    assert found["worker RSS (peak)"].measured == "399.5 MB (381 MiB)"


def test_each_target_missed():
    run = results(latency={"p99_ms": 250.0, "rate_achieved": 3_000.0})
    run["stages"]["quix"]["events_per_s"] = 3_001
    run["stages"]["floor"]["events_per_s"] = 4_001
    run["stages"]["pipeline2"]["events_per_s"] = 9_599
    run["stages"]["pipeline2"]["rss_peak_bytes_each"] = [382 * MIB]  # 400.6 MB
    run["latency_curve"]["points"][1]["p99_ms"] = 100.0
    run["latency_curve"]["points"][0]["latest_p99_ms"] = 134.0  # over a third of 400, once
    run["latency_curve"]["points"][0]["at_least_p99_ms"] = 420.1  # 20.1 ms over 400
    assert [t.met for t in targets(run)] == [False] * 8


def test_what_the_run_did_not_measure_is_not_met_nor_missed():
    run = results(stages={"pipeline": {"events_per_s": 6_000}}, latency=None, latency_curve=None)
    assert [t.met for t in targets(run)] == [None] * 8


def test_latency_at_a_rate_set_by_hand_is_not_the_half_load_target():
    run = results(parameters={"latency_rate": 200.0})
    assert by_name(targets(run))["p99 latency at half load, after the catch-up"].met is None


def test_the_table_says_yes_no_and_not_measured():
    run = results()
    run["stages"]["quix"]["events_per_s"] = 4_000
    del run["stages"]["floor"]
    lines = table(targets(run)).splitlines()
    assert lines[0] == "| target | wanted | measured | met |"
    assert lines[2].endswith("| no |") and "1.50 x" in lines[2]
    assert lines[3].endswith("| not measured |")
    assert lines[4].endswith("| yes |")


def test_the_curve_table_labels_fixed_rates_apart():
    run = results()
    lines = report.curve_table({"points": run["latency_curve"]["points"]}).splitlines()
    assert lines[2].startswith("| 10% of max | 600 / -")
    assert lines[3].startswith("| 200/s (3% of max) | 200 / -")


def test_a_curve_without_the_latest_series_leaves_its_targets_unmeasured():
    run = results()
    for point in run["latency_curve"]["points"]:
        for key in [k for k in point if k.startswith(("latest_", "at_least_"))]:
            del point[key]
    found = by_name(targets(run))
    assert found["latest p99 against committed p99, every curve point"].met is None
    assert found["atLeast on the record's own metadata: p99 produce -> answer"].met is None
    lines = report.curve_table(run["latency_curve"]).splitlines()
    assert lines[0] == "| load | views/s (target / achieved) | p50 ms | p99 ms | samples |"


def test_the_curve_table_has_the_latest_and_at_least_columns():
    lines = report.curve_table(results()["latency_curve"]).splitlines()
    assert lines[0].endswith("| latest p50 ms | latest p99 ms | atLeast p50 ms | atLeast p99 ms |")
    assert lines[3].endswith("| 10 | 30 | 35 | 110 |")


def test_a_curve_point_takes_every_series_of_a_measurement():
    result = {"rate_achieved": 199.0, "p50_ms": 40.0, "p99_ms": 90.0, "samples": 60, "not_seen": 0,
              "latest": {"p50_ms": 9.0, "p99_ms": 25.0, "samples": 60, "not_seen": 0, "max_ms": 30.0},
              "at_least": {"p50_ms": 41.0, "p99_ms": 95.0, "samples": 100, "not_seen": 1}}
    point = curve_point(result, 0.0333, True, 200.0)
    assert point == {
        "share": 0.0333, "fixed_rate": True, "rate_target": 200, "rate_achieved": 199.0,
        "p50_ms": 40.0, "p99_ms": 90.0, "samples": 60, "not_seen": 0,
        "latest_p50_ms": 9.0, "latest_p99_ms": 25.0, "latest_samples": 60,
        "at_least_p50_ms": 41.0, "at_least_p99_ms": 95.0, "at_least_samples": 100,
    }
    assert report.series_note(result) == "; latest p50 9.0 ms, p99 25.0 ms; atLeast p50 41.0 ms, p99 95.0 ms"


def test_the_plot_has_a_line_per_series_and_quantile():
    points = results()["latency_curve"]["points"]
    lines = report.curve_series(points)
    assert list(lines) == ["committed p50", "committed p99", "latest p50", "latest p99",
                           "atLeast p50", "atLeast p99"]
    assert lines["latest p99"] == ("--", "s", [120.0, 30.0])
    del points[1]["latest_p99_ms"]
    assert report.curve_series(points)["latest p99"][2][0] == 120.0
    assert math.isnan(report.curve_series(points)["latest p99"][2][1])
    bare = [{"p50_ms": 1.0, "p99_ms": 2.0}]
    assert list(report.curve_series(bare)) == ["committed p50", "committed p99"]
