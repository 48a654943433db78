"""``python -m bench`` arguments: the latency curve a full run measures by default, and clear
errors for arguments it cannot use."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.__main__ import DEFAULT_CURVE, DEFAULT_CURVE_RATES, parse
from bench.failover import parse as failover_parse
from bench.topics import app_env, run_env, settings_of


def test_a_full_run_measures_the_curve_and_the_demo_rate():
    options = parse([])
    assert options.curve == DEFAULT_CURVE == (0.1, 0.25, 0.5, 0.75, 0.9)
    assert options.curve_rates == DEFAULT_CURVE_RATES == (200.0,)
    assert options.curve_s == 15.0


def test_a_quick_run_measures_no_curve_unless_asked():
    assert parse(["--quick"]).curve == ()
    assert parse(["--quick"]).curve_rates == ()
    asked = parse(["--quick", "--curve", "0.5", "--curve-rates", "100,300"])
    assert asked.curve == (0.5,)
    assert asked.curve_rates == (100.0, 300.0)
    assert asked.curve_s == 10.0


def test_none_leaves_the_curve_out():
    options = parse(["--curve", "none", "--curve-rates", "NONE"])
    assert options.curve == ()
    assert options.curve_rates == ()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--curve", "0.5,x"], "--curve takes comma-separated numbers"),
        (["--curve", "1.5"], "--curve shares must be in (0, 1]"),
        (["--curve", "nan"], "--curve takes comma-separated numbers"),
        (["--curve-rates", "-5"], "--curve-rates must be greater than 0"),
        (["--curve-rates", "inf"], "--curve-rates takes comma-separated numbers"),
        (["--curve-seconds", "0"], "--curve-seconds must be a number greater than 0"),
        (["--latency-seconds", "nan"], "--latency-seconds must be a number greater than 0"),
        (["--budget", "inf"], "--budget must be a number greater than 0"),
    ],
)
def test_unusable_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@given(st.text(max_size=30))
def test_any_curve_text_is_parsed_or_refused_with_exit_2(text):
    try:
        options = parse(["--curve", text])
    except SystemExit as exited:
        assert exited.code == 2
    else:
        assert all(0 < share <= 1 for share in options.curve)


def test_the_broker_is_the_option_then_the_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-host:9092")
    assert parse([]).bootstrap == "env-host:9092"
    assert parse(["--bootstrap", "opt-host:9093"]).bootstrap == "opt-host:9093"
    assert failover_parse(["--bootstrap", "opt-host:9093"]).bootstrap == "opt-host:9093"


@pytest.mark.parametrize("argv", [["--days", "0"], ["--segments", "-1"], ["--partitions", "0"]])
def test_both_runs_refuse_the_same_workload_options(argv, capsys):
    for parse_run in (parse, failover_parse):
        with pytest.raises(SystemExit) as exited:
            parse_run(argv)
        assert exited.value.code == 2
        assert f"{argv[0]} must be a number greater than 0" in capsys.readouterr().err


def test_a_runs_workers_and_its_settings_name_the_same_topics():
    env = app_env(run_env("abc123", "host:9092", 6), "abc123", "p2")
    settings = settings_of(env)
    assert env["APP_ID"] == settings.app_id == "bench-abc123-p2"
    assert settings.views_topic == env["VIEWS_TOPIC"] == "bench-abc123-views"
    assert settings.insights_topic == "bench-abc123-p2-insights"
    assert (settings.topic_partitions, settings.kafka_bootstrap_servers) == (6, "host:9092")
