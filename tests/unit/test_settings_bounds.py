"""Every numeric setting has bounds and is finite; a value outside them is refused at start
with a message that names the variable, the value and what is allowed.

Before the bounds, ``SPIKE_BASELINE_HOURS=0`` divided by zero at the 20th view of a property
in an hour (then a crash loop), ``SPIKE_RATIO=nan`` gave no spike ever, and
``TREND_RATIO=-inf``, negative retentions and horizons were accepted."""

from __future__ import annotations

import math
import os
import string
import typing
from unittest import mock

import pytest
from annotated_types import Ge, Gt, Le, Lt
from hypothesis import given, settings as hsettings, strategies as st
from pydantic import SecretStr

from app.settings import Settings
from app.settings_errors import SettingsError, env_name, load_settings, type_text
from app.trends import TrendRules, is_segment_trend, is_spike, spike_baseline


def _numeric(field) -> bool:  # noqa: ANN001
    annotation = field.annotation
    args = typing.get_args(annotation) or (annotation,)
    return any(a in (int, float) for a in args)


NUMERIC = sorted(name for name, field in Settings.model_fields.items() if _numeric(field))


def _bounds(name: str) -> dict[str, float]:
    out = {}
    for item in Settings.model_fields[name].metadata:
        for kind, attr in ((Ge, "ge"), (Gt, "gt"), (Le, "le"), (Lt, "lt")):
            if isinstance(item, kind):
                out[attr] = getattr(item, attr)
    return out


def _in_range(name: str, value: float | None) -> bool:
    if value is None:
        return Settings.model_fields[name].default is None
    b = _bounds(name)
    return (
        math.isfinite(value)
        and value >= b.get("ge", -math.inf) and value > b.get("gt", -math.inf)
        and value <= b.get("le", math.inf) and value < b.get("lt", math.inf)
    )


def _env(**values: str) -> mock._patch:
    """The process environment with exactly these settings (none of the caller's)."""
    clean = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    return mock.patch.dict(os.environ, {**clean, **values}, clear=True)


def refused(**values: str) -> str:
    with _env(**values), pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


# --- every numeric setting -------------------------------------------------------------

@pytest.mark.parametrize("name", NUMERIC)
def test_every_numeric_setting_has_a_lower_and_an_upper_bound(name):
    bounds = _bounds(name)
    assert {"ge", "gt"} & set(bounds), f"{env_name(name)} has no lower bound"
    assert {"le", "lt"} & set(bounds), f"{env_name(name)} has no upper bound"


@pytest.mark.parametrize("name", NUMERIC)
def test_defaults_are_within_their_bounds(name):
    assert _in_range(name, Settings.model_fields[name].default)


@pytest.mark.parametrize("name", [n for n in NUMERIC if Settings.model_fields[n].annotation is float])
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e400"])
def test_numbers_must_be_finite(name, value):
    message = refused(**{env_name(name): value})
    assert message.startswith(f"{env_name(name)}={value}: should be a finite number")
    assert "(allowed: finite number" in message


# --- per family --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("WORKER_WEB_PORT", "0", "integer, ≥ 1, ≤ 65535"),
        ("WORKER_WEB_PORT", "65536", "integer, ≥ 1, ≤ 65535"),
        ("TOPIC_PARTITIONS", "0", "integer, ≥ 1, ≤ 10000"),
        ("PROFILES_PARTITIONS", "-1", "integer, ≥ 1, ≤ 10000"),
        ("INSIGHTS_PARTITIONS", "10001", "integer, ≥ 1, ≤ 10000"),
        ("TOPIC_REPLICATION_FACTOR", "0", "integer, ≥ 1, ≤ 32767"),
        ("TOPIC_MIN_INSYNC_REPLICAS", "0", "integer, ≥ 1, ≤ 32767"),
    ],
)
def test_ports_partitions_replicas(variable, value, allowed):
    assert refused(**{variable: value}).endswith(f"(allowed: {allowed})")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HOURLY_GRACE_SECONDS", "-1"),
        ("HOURLY_GRACE_SECONDS", str(7 * 86400 + 1)),
        ("WEEKLY_GRACE_SECONDS", "-1"),
        ("HOURLY_RETENTION_SECONDS", "-3600"),
        ("WEEKLY_RETENTION_WEEKS", "1"),  # a trend needs the week before
        ("WEEKLY_RETENTION_WEEKS", "0"),
        ("DEDUPE_HORIZON_SECONDS", "0"),
        ("DEDUPE_HORIZON_SECONDS", "-86400"),
        ("FUTURE_TOLERANCE_SECONDS", "-1"),
    ],
)
def test_windows_retention_and_horizons(variable, value):
    assert refused(**{variable: value}).startswith(f"{variable}={value}: should be")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SPIKE_BASELINE_HOURS", "0"),
        ("SPIKE_BASELINE_HOURS", "-24"),
        ("SPIKE_BASELINE_HOURS", "745"),
        ("SPIKE_MIN_VIEWS", "0"),
        ("SPIKE_RATIO", "0.5"),
        ("SPIKE_RATIO", "-3"),
        ("TREND_MIN_VIEWS", "0"),
        ("TREND_RATIO", "0"),
    ],
)
def test_trend_thresholds(variable, value):
    assert refused(**{variable: value}).startswith(f"{variable}={value}: should be")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BATCH_MAX_SECONDS", "0"),
        ("BATCH_MAX_SECONDS", "6"),
        ("VIEWS_COMMIT_INTERVAL_SECONDS", "-0.1"),
        ("VIEWS_COMMIT_INTERVAL_SECONDS", "301"),
        ("COMMIT_INTERVAL_SECONDS", "0"),
        ("COMMIT_STALL_ALERT_SECONDS", "0"),
        ("SESSION_TIMEOUT_SECONDS", "5"),
        ("SESSION_TIMEOUT_SECONDS", "1801"),
        ("HEARTBEAT_INTERVAL_SECONDS", "0"),
        ("PARTIALS_PUBLISH_SECONDS", "-1"),
        ("FETCH_MAX_WAIT_MS", "1501"),
    ],
)
def test_intervals(variable, value):
    assert refused(**{variable: value}).startswith(f"{variable}={value}: should be")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MAX_VALUE_BYTES", "0"),
        ("DLQ_MAX_MESSAGE_BYTES", "1000"),
        ("DLQ_MAX_MESSAGE_BYTES", str(2**31)),
        ("FETCH_MIN_BYTES", "0"),
        ("MAX_FETCH_BYTES", "100"),
        ("ROCKSDB_BLOCK_CACHE_BYTES", "0"),
        ("ROCKSDB_WRITE_BUFFER_BYTES", "-1"),
        ("ROCKSDB_MEMTABLES_BYTES", "1024"),
        ("BATCH_MAX_EVENTS", "0"),
        ("MAX_UNCOMMITTED_EVENTS", "0"),
        ("INSIGHTS_MEMORY", "0"),
    ],
)
def test_sizes_and_counts(variable, value):
    assert refused(**{variable: value}).startswith(f"{variable}={value}: should be")


# --- settings that bound each other --------------------------------------------------------

def test_hourly_retention_keeps_the_hours_the_spike_baseline_reads():
    message = refused(HOURLY_RETENTION_SECONDS="86400")  # baseline 24 h + the hour + grace
    assert "HOURLY_RETENTION_SECONDS=86400 is below (SPIKE_BASELINE_HOURS + 1)" in message
    assert "= 90900" in message
    with _env(HOURLY_RETENTION_SECONDS="90900"):
        assert load_settings().hourly_retention_seconds == 90900
    with _env(HOURLY_RETENTION_SECONDS="7200", SPIKE_BASELINE_HOURS="1", HOURLY_GRACE_SECONDS="0"):
        assert load_settings().spike_baseline_hours == 1


def test_heartbeat_below_the_session_timeout():
    message = refused(HEARTBEAT_INTERVAL_SECONDS="10", SESSION_TIMEOUT_SECONDS="10")
    assert "HEARTBEAT_INTERVAL_SECONDS=10 must be below SESSION_TIMEOUT_SECONDS=10" in message


def test_one_fetch_stays_within_the_uncommitted_bound():
    message = refused(BATCH_MAX_EVENTS="5000")
    assert "BATCH_MAX_EVENTS=5000 exceeds MAX_UNCOMMITTED_EVENTS=4000" in message


def test_one_memtable_stays_within_the_bound_on_all_of_them():
    message = refused(ROCKSDB_WRITE_BUFFER_BYTES=str(64 << 20))
    assert f"ROCKSDB_WRITE_BUFFER_BYTES={64 << 20} exceeds ROCKSDB_MEMTABLES_BYTES" in message


def test_min_insync_within_the_replication_factor_still_holds():
    assert "TOPIC_MIN_INSYNC_REPLICAS=3 exceeds TOPIC_REPLICATION_FACTOR=2" in refused(
        TOPIC_MIN_INSYNC_REPLICAS="3", TOPIC_REPLICATION_FACTOR="2"
    )


def test_every_problem_is_reported_at_once():
    message = refused(SPIKE_BASELINE_HOURS="0", SPIKE_RATIO="nan", WORKER_WEB_PORT="x")
    for variable in ("SPIKE_BASELINE_HOURS=0", "SPIKE_RATIO=nan", "WORKER_WEB_PORT=x"):
        assert variable in message


# --- what an error shows -------------------------------------------------------------------

def test_a_secret_is_never_shown():
    message = refused(PEER_SECRET="short-secret")
    assert "short-secret" not in message
    assert message.startswith("PEER_SECRET=<hidden>: ")
    assert "(allowed: secret, at least 16 characters)" in message


def test_a_long_or_odd_value_is_shown_cut_and_quoted():
    assert refused(SPIKE_RATIO="x" * 500).startswith("SPIKE_RATIO=" + "x" * 60 + "...:")
    assert refused(SPIKE_RATIO="two and a half").startswith("SPIKE_RATIO='two and a half':")
    assert refused(SPIKE_RATIO="").startswith("SPIKE_RATIO='':")


def test_the_allowed_text_is_the_readmes():
    fields = Settings.model_fields
    assert type_text(fields["spike_baseline_hours"]) == "integer, ≥ 1, ≤ 744"
    assert type_text(fields["spike_ratio"]) == "finite number, ≥ 1, ≤ 1000000"
    assert type_text(fields["batch_max_seconds"]) == "finite number, > 0, ≤ 5"


def test_an_empty_api_token_is_no_token():
    with _env(API_TOKEN=""):
        assert load_settings().api_token is None
    with _env(API_TOKEN="t0ken"):
        assert load_settings().api_token == SecretStr("t0ken")


# --- whatever the value ---------------------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "0", "-0", "0.0", "1_000", "0x10", " 7 ", ""]),
    st.text(string.printable, max_size=12),
)


@hsettings(max_examples=400, deadline=None)
@given(name=st.sampled_from(NUMERIC), value=_NUMBERS)
def test_any_value_gives_settings_in_range_or_an_error_naming_the_variable(name, value):
    variable = env_name(name)
    with _env(**{variable: value}):
        try:
            s = load_settings()
        except SettingsError as exc:
            assert variable in str(exc)
            assert "Traceback" not in str(exc) and "\n" not in str(exc)
            return
    for field in NUMERIC:
        assert _in_range(field, getattr(s, field)), (field, getattr(s, field))
    # the rules that read them cannot divide by zero or compare with nan
    rules = TrendRules(s.spike_min_views, s.spike_ratio, s.spike_baseline_hours,
                       s.trend_min_views, s.trend_ratio)
    baseline = spike_baseline([1] * s.spike_baseline_hours, s.spike_baseline_hours)
    assert baseline == 1
    assert is_spike(max(s.spike_min_views, math.ceil(s.spike_ratio)), baseline, rules)
    assert is_segment_trend(max(s.trend_min_views, math.ceil(s.trend_ratio * 10)), 10, rules)


@hsettings(max_examples=200, deadline=None)
@given(
    baseline=st.integers(min_value=-5, max_value=800),
    grace=st.integers(min_value=-5, max_value=8 * 86400),
    retention=st.integers(min_value=-5, max_value=40 * 86400),
)
def test_retention_grace_and_baseline_together(baseline, grace, retention):
    values = {
        "SPIKE_BASELINE_HOURS": str(baseline),
        "HOURLY_GRACE_SECONDS": str(grace),
        "HOURLY_RETENTION_SECONDS": str(retention),
    }
    with _env(**values):
        try:
            s = load_settings()
        except SettingsError as exc:
            assert any(name in str(exc) for name in values)
            return
    # a view still counted in its hour finds that hour and its baseline's hours kept
    assert s.hourly_retention_seconds >= (s.spike_baseline_hours + 1) * 3600 + s.hourly_grace_seconds


@pytest.mark.parametrize(
    "value", ["localhost", "broker:0", "broker:65536", "broker:port", ":9092", "a:9092,,b:9092", ""]
)
def test_bootstrap_servers_are_host_port_pairs(value):
    message = refused(KAFKA_BOOTSTRAP_SERVERS=value)
    assert message.startswith("KAFKA_BOOTSTRAP_SERVERS=")
    assert "is not host:port with a port 1-65535" in message


@pytest.mark.parametrize("value", ["localhost:9092", "a:9092, b:9093", "[::1]:9092", "10.0.0.1:1"])
def test_good_bootstrap_servers_are_kept(value):
    with _env(KAFKA_BOOTSTRAP_SERVERS=value):
        assert load_settings().kafka_bootstrap_servers == value
