"""A shadow's names and settings: nothing it writes can land on a live topic, and only
settings that do not decide its input or its names can differ from the live ones."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.replay.shadow import FIXED, Shadow, ShadowError, check_name, parse_overrides
from app.replay.worker import PER_WORKER, default_data_dir, env_lines, worker_env
from app.settings import Settings
from app.topics import topic_specs


def live() -> Settings:
    return Settings(app_id="pa", views_topic="v", profiles_topic="p", insights_topic="i",
                    topic_partitions=4)


def test_every_topic_the_shadow_writes_is_its_own():
    shadow = Shadow("lower", live(), {"SPIKE_RATIO": "2.5"})
    s = shadow.settings(worker_web_port=7066)
    live_topics = {spec.name for spec in topic_specs(live())}
    shadow_topics = {spec.name for spec in topic_specs(s)}
    inputs = {"v", "p", "property.events"}
    assert live_topics & shadow_topics == inputs  # it reads the live input, writes nothing live
    assert s.app_id == "pa-shadow-lower"
    assert s.insights_topic == "lower.i"
    assert (s.dlq_views_topic, s.dlq_profiles_topic) == ("lower.v.dlq", "lower.p.dlq")
    assert s.spike_ratio == 2.5 and s.topic_partitions == 4
    assert shadow.manifest_topic == "pa-shadow-lower-replay" not in live_topics


def test_overrides_are_validated_like_any_setting():
    with pytest.raises(ShadowError, match="SPIKE_RATIO=lots: should be a valid number"):
        Shadow("x", live(), {"SPIKE_RATIO": "lots"}).settings()
    with pytest.raises(ShadowError, match=r"BATCH_MAX_EVENTS=0: .* \(allowed: integer, ≥ 1,"):
        Shadow("x", live(), {"BATCH_MAX_EVENTS": "0"}).settings()
    with pytest.raises(ShadowError, match=r"SPIKE_BASELINE_HOURS=0: .*\(allowed: integer, ≥ 1, ≤ 744\)"):
        Shadow("x", live(), {"SPIKE_BASELINE_HOURS": "0"}).settings()
    with pytest.raises(ShadowError, match="SPIKE_RATIO=nan: should be a finite number"):
        Shadow("x", live(), {"SPIKE_RATIO": "nan"}).settings()
    assert Shadow("x", live(), {"views_gap_check": "false"}).settings().views_gap_check is False


@pytest.mark.parametrize("item, problem", [
    ("SPIKE_RATIO", "expected NAME=VALUE"),
    ("=2", "expected NAME=VALUE"),
    ("NO_SUCH_THING=1", "no such setting"),
    ("APP_ID=other", "takes APP_ID from the live app"),
    ("VIEWS_TOPIC=other", "takes VIEWS_TOPIC"),
    ("KAFKA_BOOTSTRAP_SERVERS=elsewhere:9092", "takes KAFKA_BOOTSTRAP_SERVERS"),
    ("TOPIC_PARTITIONS=3", "takes TOPIC_PARTITIONS"),
])
def test_bad_overrides_are_refused_with_the_reason(item, problem):
    with pytest.raises(ShadowError, match=problem):
        parse_overrides([item])


def test_overrides_parse_names_case_insensitively_and_keep_values_as_given():
    assert parse_overrides(["spike_ratio=2.5", "TREND_RATIO= 1.5"]) == {
        "SPIKE_RATIO": "2.5", "TREND_RATIO": " 1.5"}
    with pytest.raises(ShadowError, match="twice"):
        parse_overrides(["SPIKE_RATIO=2", "SPIKE_RATIO=3"])


def test_fixed_settings_exist():
    assert FIXED <= set(Settings.model_fields)


@given(st.text(max_size=60))
def test_a_valid_name_makes_valid_topic_names(name):
    try:
        check_name(name)
    except ShadowError:
        return
    shadow = Shadow(name, live())
    for topic in (shadow.app_id, shadow.output("analytics.insights"), shadow.manifest_topic):
        assert len(topic) <= 249 and all(c.isalnum() or c in "._-" for c in topic)
        assert topic.isascii()
    assert "." not in name


def test_worker_env_drops_the_live_workers_own_settings():
    base = {"APP_ID": "pa", "WORKER_WEB_PORT": "6066", "WORKER_DATA_DIR": "/live",
            "WORKER_CANONICAL_URL": "http://live:6066", "SPIKE_RATIO": "3", "PATH": "/bin"}
    shadow = Shadow("s", live(), {"SPIKE_RATIO": "2"})
    env = worker_env(base, shadow.env(), 7066, default_data_dir("s", 7066))
    assert env["APP_ID"] == "pa-shadow-s" and env["SPIKE_RATIO"] == "2" and env["PATH"] == "/bin"
    assert env["WORKER_WEB_PORT"] == "7066"
    assert env["WORKER_DATA_DIR"] == "data/shadow-s/worker-7066"
    assert "WORKER_CANONICAL_URL" not in env
    assert set(PER_WORKER) <= {k for k in base}


def test_env_lines_are_shell_quoted():
    assert env_lines({"B": "two words", "A": "x"}) == ["A=x", "B='two words'"]
