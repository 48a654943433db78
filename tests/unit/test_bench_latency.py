"""The latency probes (bench/latency.py): samples of the committed and latest series from the
answers a probe sees, the summary of a series, and the URLs each series asks."""

from bench.latency import COMMITTED, LATEST, Probe, hour_url, next_bound, summary
from bench.report import asked_note

HOUR = 1_795_183_200_000  # 2026-11-20T14:00:00Z


def test_each_series_takes_a_probe_view_once_when_its_count_first_shows_it():
    probe = Probe("probe-1", "http://w")
    probe.sent[HOUR] = [10.0, 10.5, 11.0]
    assert probe.pending_hour(COMMITTED) == HOUR and probe.pending_hour(LATEST) == HOUR
    assert probe.observe(LATEST, HOUR, 2, 10.6) == 2  # latest sees two views ahead of commit
    assert probe.observe(COMMITTED, HOUR, 1, 10.9) == 1
    assert probe.observe(COMMITTED, HOUR, 1, 11.2) == 0  # seen already: no new sample
    assert probe.observe(LATEST, HOUR, 5, 11.1) == 1  # more than sent (other views): capped
    assert probe.observe(COMMITTED, HOUR, 3, 11.4) == 2
    assert [round(x, 3) for x in probe.found[LATEST]] == [0.6, 0.1, 0.1]
    assert [round(x, 3) for x in probe.latencies] == [0.9, 0.9, 0.4]
    assert probe.pending_hour(COMMITTED) is None and probe.pending_hour(LATEST) is None


def test_a_series_summary_in_milliseconds():
    assert summary([0.010, 0.020, 0.030], 4) == {
        "samples": 3, "not_seen": 1, "p50_ms": 20.0, "p99_ms": 30.0, "max_ms": 30.0,
    }
    assert summary([], 2) == {"samples": 0, "not_seen": 2, "p50_ms": None, "p99_ms": None,
                              "max_ms": None}


def test_each_series_asks_its_own_question():
    assert hour_url("http://w", "p-1", HOUR) == "http://w/api/properties/p-1/views?hour=2026-11-20T14:00:00Z"
    assert hour_url("http://w", "p-1", HOUR, LATEST).endswith("&consistency=latest")
    assert hour_url("http://w", "p-1", HOUR, COMMITTED, "views:3:17").endswith(
        "&atLeast=views:3:17&timeout=10"
    )


def test_the_next_question_waits_for_the_move_past_the_last_answer():
    body = {"views": 3, "position": {"committed": True, "offsets": {"views-x": {"4": 120}}}}
    assert next_bound(body) == "views-x:4:121"
    assert next_bound({"views": 3}) is None  # an answer without position: poll instead
    two = {"position": {"offsets": {"a": {"1": 2}, "b": {"1": 2}}}}
    assert next_bound(two) is None


def test_how_the_probes_asked_is_said():
    assert asked_note({"poll_interval_ms": None}).startswith("asked at each move")
    assert asked_note({"poll_interval_ms": 10.0}) == "poll every 10 ms"
