"""Dead-letter topics hold any record their input topic holds, plus the dlq.* headers; the
producers that write them may send that much."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from app.main import create_app
from app.models.events import Rejection
from app.settings import Settings
from app.topics import (
    DLQ_HEADERS_HEADROOM,
    MAX_MESSAGE_BYTES,
    MIN_INSYNC_REPLICAS,
    creation_config,
    dead_letter_limit_problem,
    dead_letter_topics,
    TopicMismatch,
    raised_limit,
    topic_configs,
    topic_specs,
)

BROKER_DEFAULT_LIMIT = 1_048_588  # message.max.bytes, what a topic without override takes
LONGEST_TOPIC = "t" * 249


def largest_dead_letter(input_limit: int) -> int:
    """Bytes of the largest dead-letter batch: a record that filled its input batch (61 bytes
    of batch header), copied with the largest dlq.* headers."""
    headers = Rejection("unsupported_version", "d" * 5000).dlq_headers(
        LONGEST_TOPIC, 2**31 - 1, 2**63 - 1
    )
    with_headers = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"k", b"v", headers)
    without = DefaultRecordBatchBuilder.estimate_size_in_bytes(b"k", b"v", [])
    return input_limit + (with_headers - without)


def test_dead_letter_topics_are_created_with_room_for_any_input_record_and_headers():
    s = Settings()
    specs = {spec.name: spec for spec in topic_specs(s)}
    for dlq_topic, input_topic in dead_letter_topics(s).items():
        limit = int(specs[dlq_topic].config[MAX_MESSAGE_BYTES])
        input_limit = int(specs[input_topic].config.get(MAX_MESSAGE_BYTES, BROKER_DEFAULT_LIMIT))
        assert limit == s.dlq_max_message_bytes
        assert limit >= largest_dead_letter(input_limit)
        assert dead_letter_limit_problem(dlq_topic, limit, input_topic, input_limit) is None


def test_headroom_covers_the_largest_headers():
    assert largest_dead_letter(0) < DLQ_HEADERS_HEADROOM


def test_a_dlq_limit_too_small_for_its_input_is_a_clear_error():
    problem = dead_letter_limit_problem("v.dlq", 1_114_112, "v", 2_000_000)
    assert problem is not None
    assert "DLQ_MAX_MESSAGE_BYTES" in problem and str(2_000_000 + DLQ_HEADERS_HEADROOM) in problem


def test_an_existing_dlq_limit_is_raised_keeping_its_other_settings():
    current = {"retention.ms": "12345", MAX_MESSAGE_BYTES: "1048588"}
    raised = {"retention.ms": "12345", MAX_MESSAGE_BYTES: "1114112"}
    assert raised_limit(current, 1_114_112) == raised
    assert raised_limit({MAX_MESSAGE_BYTES: "2000000"}, 1_114_112) is None  # never lowered


@pytest.mark.parametrize("limit", [1_114_112, 4_000_000])
def test_the_stages_that_dead_letter_may_send_a_copy_at_the_input_limit(tmp_path, limit):
    """The views and profile-rejects stages write the dead-letter topics through their
    partitions' transactional producers, whose send() refuses anything over max_request_size."""
    settings = Settings(worker_data_dir=tmp_path, app_id="topics-test", dlq_max_message_bytes=limit)
    runtime = create_app(settings).runtime
    for stage in (runtime.views, runtime.profile_rejects):
        sendable = stage.owned._max_request_size  # noqa: SLF001
        assert sendable >= largest_dead_letter(BROKER_DEFAULT_LIMIT)
        assert sendable == limit


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),  # one replica: the broker's default
        ({"TOPIC_REPLICATION_FACTOR": "2"}, None),
        ({"TOPIC_REPLICATION_FACTOR": "3"}, "2"),  # production: two of three in sync
        ({"TOPIC_REPLICATION_FACTOR": "5"}, "2"),
        ({"TOPIC_REPLICATION_FACTOR": "3", "TOPIC_MIN_INSYNC_REPLICAS": "3"}, "3"),
        ({"TOPIC_REPLICATION_FACTOR": "2", "TOPIC_MIN_INSYNC_REPLICAS": "2"}, "2"),
    ],
)
def test_every_topic_is_created_with_the_min_insync_replicas_of_its_replication(
    monkeypatch, env, expected
):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s = Settings()
    for spec in topic_specs(s):
        config = creation_config(spec, s)
        assert config.get(MIN_INSYNC_REPLICAS) == expected, spec.name
        # the topic's own settings are kept (compaction, the dead letters' limit)
        assert {k: v for k, v in config.items() if k != MIN_INSYNC_REPLICAS} == spec.config


def test_min_insync_replicas_above_the_replication_factor_is_refused(monkeypatch):
    monkeypatch.setenv("TOPIC_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("TOPIC_MIN_INSYNC_REPLICAS", "4")
    with pytest.raises(ValueError, match="TOPIC_MIN_INSYNC_REPLICAS=4 exceeds"):
        Settings()


def test_creation_problems_name_refused_topics_but_not_ones_created_meanwhile():
    from app.topics import creation_problems

    errors = [
        {"topic": "views", "error_code": 0, "error_message": None},
        {"topic": "pa-x", "error_code": 36, "error_message": "exists"},
        {"topic": "out", "error_code": 29, "error_message": "Authorization failed."},
    ]
    assert creation_problems(errors) == ["out: Authorization failed. (error 29)"]


class _Answer:
    def __init__(self, resources: list[dict]) -> None:
        self._resources = resources

    def to_object(self) -> dict:
        return {"resources": self._resources}


class _AdminThatLearnsLate:
    """Answers UNKNOWN_TOPIC_OR_PARTITION (3) for its first ``unknown_for`` questions, as a
    broker does right after it started or created the topic."""

    def __init__(self, unknown_for: int) -> None:
        self.unknown_for = unknown_for
        self.asked = 0

    async def describe_configs(self, resources):
        self.asked += 1
        late = self.asked <= self.unknown_for
        entry = {"config_names": MAX_MESSAGE_BYTES, "config_value": "1048588",
                 "config_source": 5, "is_default": True}
        return [_Answer([
            {"resource_name": r.name, "error_code": 3,
             "error_message": "This server does not host this topic-partition."}
            if late else
            {"resource_name": r.name, "error_code": 0, "error_message": None,
             "config_entries": [entry]}
            for r in resources
        ])]


async def test_topic_settings_are_asked_again_while_the_broker_does_not_know_the_topic():
    admin = _AdminThatLearnsLate(unknown_for=5)
    configs = await topic_configs(admin, ["a", "b"], patience_s=5, pause_s=0.001)
    assert admin.asked == 6
    assert configs["a"][0] == {MAX_MESSAGE_BYTES: "1048588"}
    assert set(configs) == {"a", "b"}


async def test_a_topic_still_unknown_after_the_patience_is_a_clear_error():
    admin = _AdminThatLearnsLate(unknown_for=10**9)
    with pytest.raises(TopicMismatch, match=r"cannot read the settings of .*'a': 'error 3"):
        await topic_configs(admin, ["a"], patience_s=0.05, pause_s=0.001)
    assert admin.asked > 1
