"""The speed targets as one benchmark run's results report them (bench/targets.py)."""

from bench import report
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
            {"share": 0.1, "fixed_rate": False, "rate_target": 600, "p50_ms": 50.0, "p99_ms": 400.0},
            {"share": 0.0333, "fixed_rate": True, "rate_target": 200, "p50_ms": 40.0, "p99_ms": 90.0},
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
    }
    assert found["1 worker against the Quix Streams peer"].measured.startswith("3.00 x")
    assert found["worker RSS (peak)"].measured == "399.5 MB (381 MiB)"


def test_each_target_missed():
    run = results(latency={"p99_ms": 250.0, "rate_achieved": 3_000.0})
    run["stages"]["quix"]["events_per_s"] = 3_001
    run["stages"]["floor"]["events_per_s"] = 4_001
    run["stages"]["pipeline2"]["events_per_s"] = 9_599
    run["stages"]["pipeline2"]["rss_peak_bytes_each"] = [382 * MIB]  # 400.6 MB
    run["latency_curve"]["points"][1]["p99_ms"] = 100.0
    assert [t.met for t in targets(run)] == [False] * 6


def test_what_the_run_did_not_measure_is_not_met_nor_missed():
    run = results(stages={"pipeline": {"events_per_s": 6_000}}, latency=None, latency_curve=None)
    assert [t.met for t in targets(run)] == [None] * 6


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
