"""The insights read model holds only insights in the contract's shape: a record without a
subject, with a time that is not one, or any other bytes, is skipped by the tail (logged
with topic[partition]@offset and counted), never held, never served, never an exception."""

from __future__ import annotations

import logging

import orjson
import pytest
from aiokafka import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from app.readmodels.insights import TIMES, InsightsMemory, insight_problem
from app.readmodels.tail import TopicTail

INSIGHTS = "analytics.insights"
GOOD = {
    "insightId": "property_hourly_spike:p:2026-11-20T14:00:00Z",
    "type": "property_hourly_spike",
    "subject": {"propertyId": "p"},
    "windowStart": "2026-11-20T14:00:00Z",
    "windowEnd": "2026-11-20T15:00:00Z",
    "metrics": {"views": 21, "uniqueUsers": 10, "baseline": 7.0, "ratio": 3.0},
    "detectedAt": "2026-11-20T14:31:00Z",
}


def rec(offset: int, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(INSIGHTS, 0, offset, 0, 0, None, value, None, 0, 0, [])


def without(name: str) -> dict:
    return {k: v for k, v in GOOD.items() if k != name}


BAD = {
    "no subject": without("subject"),
    "subject null": {**GOOD, "subject": None},
    "subject empty": {**GOOD, "subject": {}},
    "subject of numbers": {**GOOD, "subject": {"propertyId": 7}},
    "bad windowStart": {**GOOD, "windowStart": "yesterday"},
    "windowStart without offset": {**GOOD, "windowStart": "2026-11-20T14:00:00"},
    "windowStart a number": {**GOOD, "windowStart": 1795183200000},
    "windowStart before year 1 in UTC": {**GOOD, "windowStart": "0001-01-01T00:00:00+00:01"},
    "no windowEnd": without("windowEnd"),
    "no detectedAt": without("detectedAt"),
    "no type": without("type"),
    "metrics a list": {**GOOD, "metrics": [1]},
    "property a text": {**GOOD, "property": "x"},
    "insightId a number": {**GOOD, "insightId": 5},
}


@pytest.mark.parametrize("why", sorted(BAD))
def test_a_malformed_insight_is_skipped_logged_and_counted_and_the_next_is_held(why, caplog):
    memory = InsightsMemory(10)
    counted = []
    tail = TopicTail(INSIGHTS, {}, memory.apply, on_skipped=lambda: counted.append(1))
    with caplog.at_level(logging.WARNING, logger="app.readmodels.tail"):
        assert tail.take(rec(41, orjson.dumps(BAD[why]))) is False
    assert tail.take(rec(42, orjson.dumps(GOOD))) is True
    assert memory.latest(10) == [GOOD]
    assert tail.skipped == 1 and counted == [1]
    assert f"{INSIGHTS}[0]@41" in caplog.text and "not an insight" in caplog.text


def test_a_good_insight_with_its_property_is_held():
    memory = InsightsMemory(10)
    doc = {**GOOD, "property": {"title": "Loft", "city": "Lyon", "status": "listed", "price": 1}}
    memory.apply(None, orjson.dumps(doc))
    memory.apply(None, orjson.dumps({**GOOD, "insightId": "other", "property": None}))
    assert [i["insightId"] for i in memory.latest(10)] == ["other", GOOD["insightId"]]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
TIME = st.one_of(
    st.sampled_from(["2026-11-20T14:00:00Z", "2026-11-20T14:00:00+02:00", "9999-12-31T23:59:59Z",
                     "0001-01-01T00:00:00+00:01", "2026-11-20", "bad", ""]),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    JSON,
)
# Records near the contract's shape, each field possibly missing or of any type.
NEAR = st.fixed_dictionaries(
    {},
    optional={
        "insightId": st.text() | JSON,
        "type": st.sampled_from(["property_hourly_spike", "other"]) | JSON,
        "subject": st.dictionaries(st.text(), st.text(), max_size=3) | JSON,
        "windowStart": TIME,
        "windowEnd": TIME,
        "detectedAt": TIME,
        "metrics": st.dictionaries(st.text(), JSON, max_size=3) | JSON,
        "property": st.none() | st.dictionaries(st.text(), JSON, max_size=3) | JSON,
    },
)
RECORD = st.one_of(
    st.binary(max_size=200),
    JSON.map(orjson.dumps),
    NEAR.map(orjson.dumps),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(RECORD, max_size=12))
def test_any_records_are_skipped_or_held_never_an_exception(values):
    memory = InsightsMemory(5)
    tail = TopicTail(INSIGHTS, {}, memory.apply)
    taken = [tail.take(rec(offset, value)) for offset, value in enumerate(values)]
    assert all(isinstance(t, bool) for t in taken)
    assert tail.skipped == taken.count(False)
    held = memory.latest(10)
    assert len(held) <= 5
    for doc in held:
        assert insight_problem(doc) is None
        assert isinstance(doc["subject"], dict) and all(isinstance(v, str) for v in doc["subject"].values())
    orjson.dumps(held)  # what /api/insights answers


def test_every_time_field_is_checked():
    for name in TIMES:
        assert insight_problem({**GOOD, name: "not a time"}) == f"no {name} time with an offset"
    assert insight_problem(GOOD) is None
