"""The topic configuration backup: documents round-trip, hostile ones are refused with the
place of the problem, and a plan never changes an existing topic."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.dr.topics import (
    CREATE,
    DIFFERS,
    MISSING,
    OK,
    BadDocument,
    TopicState,
    document,
    parse_document,
    plan,
)

names = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,40}", fullmatch=True)
states = st.builds(
    TopicState, names, st.integers(1, 64), st.integers(1, 5),
    st.dictionaries(st.sampled_from(["cleanup.policy", "retention.ms", "max.message.bytes"]),
                    st.text(min_size=1, max_size=12)),
)


@given(st.lists(states, max_size=8, unique_by=lambda t: t.name))
def test_round_trip(topics):
    assert parse_document(document(topics, {"appId": "pa"})) == topics


@pytest.mark.parametrize("doc, problem", [
    (b"{", "not JSON"),
    (b"[]", "not a topics document"),
    (b'{"format": 2, "topics": []}', "not a topics document"),
    (b'{"format": 1}', "'topics' must be a list"),
    (b'{"format": 1, "topics": [3]}', r"topics\[0\] is not an object"),
    (b'{"format": 1, "topics": [{"name": "a/b", "partitions": 1, "replicationFactor": 1}]}',
     "is not a topic name"),
    (b'{"format": 1, "topics": [{"name": "..", "partitions": 1, "replicationFactor": 1}]}',
     "is not a topic name"),
    (b'{"format": 1, "topics": [{"name": "a", "partitions": 0, "replicationFactor": 1}]}',
     "partitions of a must be a positive integer"),
    (b'{"format": 1, "topics": [{"name": "a", "partitions": true, "replicationFactor": 1}]}',
     "partitions of a must be a positive integer"),
    (b'{"format": 1, "topics": [{"name": "a", "partitions": 1, "replicationFactor": 1,'
     b' "configs": {"retention.ms": 5}}]}', "configs of a must map names to strings"),
    (b'{"format": 1, "topics": [{"name": "a", "partitions": 1, "replicationFactor": 1},'
     b' {"name": "a", "partitions": 1, "replicationFactor": 1}]}', "topic a twice"),
])
def test_bad_documents_say_where(doc, problem):
    with pytest.raises(BadDocument, match=problem):
        parse_document(doc)


def test_plan_creates_missing_topics_and_reports_differences():
    views = TopicState("views", 12, 3, {"retention.ms": "1000"})
    dlq = TopicState("views.dlq", 12, 3, {"max.message.bytes": "2000000"})
    log = TopicState("changelog", 12, 3, {"cleanup.policy": "compact"})
    existing = {"views": TopicState("views", 6, 1, {}), "changelog": TopicState("changelog", 12, 1)}
    effective = {"views": {"retention.ms": "1000"}, "changelog": {"cleanup.policy": "compact"}}
    steps = {s.topic.name: s for s in plan([views, dlq, log], existing, effective, 1)}
    assert steps["views.dlq"].action == CREATE and steps["views.dlq"].topic.replication_factor == 1
    assert steps["views"].action == DIFFERS
    assert steps["views"].problems == ("partitions 6, wanted 12",)
    assert steps["changelog"].action == OK
    strict = {s.topic.name: s for s in plan([log], existing, effective)}
    assert strict["changelog"].problems == ("replication factor 1, wanted 3",)
    assert plan([dlq], {}, {}, check_only=True)[0].action == MISSING


def test_a_setting_that_differs_is_named():
    wanted = TopicState("t", 1, 1, {"cleanup.policy": "compact"})
    step = plan([wanted], {"t": TopicState("t", 1, 1)}, {"t": {"cleanup.policy": "delete"}})[0]
    assert step.action == DIFFERS and step.problems == ("cleanup.policy=delete, wanted compact",)


def test_document_is_readable_json():
    doc = orjson.loads(document([TopicState("a", 1, 1)], {"appId": "pa"}))
    assert doc == {"format": 1, "appId": "pa", "topics": [
        {"name": "a", "partitions": 1, "replicationFactor": 1, "configs": {}}]}


# --- min.insync.replicas never above the replication factor applied ---------------------------

def test_min_insync_is_lowered_to_a_smaller_replication_factor_with_a_warning():
    exported = TopicState("views", 12, 3, {"min.insync.replicas": "2", "retention.ms": "1000"})
    step = plan([exported], {}, {}, replication_factor=1)[0]
    assert step.action == CREATE
    assert step.topic == TopicState("views", 12, 1, {"min.insync.replicas": "1", "retention.ms": "1000"})
    assert step.warning == (
        "min.insync.replicas=2 lowered to 1, the replication factor it is applied with: "
        "no more replicas than that can ever be in sync"
    )


def test_min_insync_within_the_replication_factor_is_kept():
    exported = TopicState("views", 12, 3, {"min.insync.replicas": "2"})
    assert plan([exported], {}, {})[0].warning is None
    assert plan([exported], {}, {})[0].topic.configs == {"min.insync.replicas": "2"}
    two = plan([exported], {}, {}, replication_factor=2)[0]
    assert two.topic.configs == {"min.insync.replicas": "2"} and two.warning is None


def test_an_existing_topic_is_checked_against_the_lowered_value():
    exported = TopicState("views", 12, 3, {"min.insync.replicas": "2"})
    created_so = {"views": TopicState("views", 12, 1, {"min.insync.replicas": "1"})}
    ok = plan([exported], created_so, {"views": {"min.insync.replicas": "1"}}, 1)[0]
    assert ok.action == OK
    unwritable = plan([exported], created_so, {"views": {"min.insync.replicas": "2"}}, 1)[0]
    assert unwritable.action == DIFFERS
    assert unwritable.problems == ("min.insync.replicas=2, wanted 1",)


@given(
    rf=st.integers(min_value=1, max_value=10),
    min_isr=st.one_of(st.integers(min_value=-2, max_value=12).map(str), st.sampled_from(["x", ""])),
    given_rf=st.one_of(st.none(), st.integers(min_value=1, max_value=10)),
)
def test_min_insync_never_exceeds_the_replication_factor_it_is_created_with(rf, min_isr, given_rf):
    step = plan([TopicState("t", 1, rf, {"min.insync.replicas": min_isr})], {}, {}, given_rf)[0]
    value = step.topic.configs["min.insync.replicas"]
    if value.lstrip("-").isdigit():
        assert int(value) <= step.topic.replication_factor
        assert (step.warning is not None) == (int(min_isr) > step.topic.replication_factor)
    else:
        assert value == min_isr and step.warning is None  # left to the broker to refuse
