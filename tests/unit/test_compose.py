"""tests/support/compose.py: compose's variable interpolation, durations, services."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.compose import ComposeError, _duration_s, interpolate, service

NAMES = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)
PLAIN = st.text(alphabet=st.characters(blacklist_characters="$"), max_size=40)
VALUES = st.text(max_size=20)


@pytest.mark.parametrize(("text", "env", "want"), [
    ("plain", {}, "plain"),
    ("$A", {"A": "1"}, "1"),
    ("x${A}y", {"A": "1"}, "x1y"),
    ("${A}", {}, ""),
    ("${A:-d}", {}, "d"),
    ("${A:-d}", {"A": ""}, "d"),
    ("${A-d}", {"A": ""}, ""),
    ("${A-d}", {}, "d"),
    ("${A:?need it}", {"A": "v"}, "v"),
    ("${A?need it}", {"A": ""}, ""),
    ("$$A", {"A": "1"}, "$A"),
    ("a$$", {}, "a$"),
    ("${A}-${B:-b}", {"A": "a"}, "a-b"),
])
def test_interpolate_examples(text, env, want) -> None:
    assert interpolate(text, env) == want


@pytest.mark.parametrize(("text", "env", "message"), [
    ("${A:?set A}", {}, "A is required: set A"),
    ("${A:?set A}", {"A": ""}, "A is required: set A"),
    ("${A?}", {}, "A is required: not set"),
    ("$", {}, "invalid interpolation"),
    ("${1A}", {}, "invalid interpolation"),
    ("${A", {}, "invalid interpolation"),
    ("x $ y", {}, "invalid interpolation"),
])
def test_interpolate_refuses_with_a_clear_error(text, env, message) -> None:
    with pytest.raises(ComposeError, match=re.escape(message)):
        interpolate(text, env)


@given(PLAIN, st.dictionaries(NAMES, VALUES))
def test_text_without_dollar_is_unchanged(text, env) -> None:
    assert interpolate(text, env) == text


@given(PLAIN, NAMES, VALUES, PLAIN)
def test_a_set_variable_is_replaced_by_its_value(before, name, value, after) -> None:
    assert interpolate(f"{before}${{{name}}}{after}", {name: value}) == before + value + after
    assert interpolate(f"{before}${{{name}:-other}}{after}", {name: value}) == (
        before + (value or "other") + after)


@given(PLAIN, st.dictionaries(NAMES, VALUES))
def test_doubled_dollars_are_literal(text, env) -> None:
    assert interpolate(text.replace("x", "$$"), env) == text.replace("x", "$")


@given(NAMES, PLAIN.filter(lambda s: "}" not in s))
def test_a_required_variable_missing_names_itself(name, message) -> None:
    with pytest.raises(ComposeError, match=re.escape(f"{name} is required")):
        interpolate(f"${{{name}:?{message}}}", {})


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200), ("1.5s", 1.5)])
def test_durations(text, seconds) -> None:
    assert _duration_s(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "s", "30 s", "1x", "-5s", "30s junk"])
def test_bad_durations_are_refused(text) -> None:
    with pytest.raises(ComposeError, match="bad duration"):
        _duration_s(text)


@given(st.integers(0, 10**6), st.sampled_from(["h", "m", "s", "ms"]))
def test_durations_scale_by_unit(number, unit) -> None:
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    assert _duration_s(f"{number}{unit}") == pytest.approx(number * scale)


FILE = {"services": {
    "w": {"image": "i", "environment": ["A=1", "B=${T:?need T}", "C"], "volumes": ["v:/data"],
          "command": ["run", "$$HOME"], "stop_grace_period": "10s"},
    "shell": {"command": "faust worker"},
    "badvol": {"volumes": ["/data"]},
    "badenv": {"environment": "A=1"},
}}


def test_service_reads_environment_lists_volumes_and_command() -> None:
    svc = service(FILE, "w", {"T": "t", "C": "from-env"})
    assert svc.environment == {"A": "1", "B": "t", "C": "from-env"}
    assert svc.volumes == {"/data": "v"}
    assert svc.command == ["run", "$HOME"]
    assert svc.stop_grace_s == 10


@pytest.mark.parametrize(("name", "env", "message"), [
    ("nope", {}, "no service 'nope'"),
    ("w", {}, "T is required"),
    ("shell", {}, "as a list"),
    ("badvol", {}, "SOURCE:TARGET"),
    ("badenv", {}, "list or a mapping"),
])
def test_service_errors_say_what_is_wrong(name, env, message) -> None:
    with pytest.raises(ComposeError, match=re.escape(message)):
        service(FILE, name, env)
