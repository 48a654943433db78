"""``python -m bench`` arguments: the latency curve a full run measures by default, and clear
errors for arguments it cannot use."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.__main__ import DEFAULT_CURVE, DEFAULT_CURVE_RATES, parse


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
