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
