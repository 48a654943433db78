"""Read models tailed by every worker: a record they cannot read is skipped, logged with
``topic[partition]@offset`` and counted; the records after it are still applied."""

from __future__ import annotations

import logging

import orjson
import pytest
from aiokafka import ConsumerRecord

from app.readmodels.insights import InsightsMemory
from app.readmodels.partials import partials_tail
from app.readmodels.tail import TopicTail
from app.readmodels.partials import VIEWS, PartialsView, SegmentWeek, partial_key, views_partial

W47 = 1_794_787_200_000  # Monday 2026-11-16
PARTIALS = "property-analytics-segment-partials"
INSIGHTS = "analytics.insights"


def rec(topic: str, offset: int, key: bytes | None, value: bytes | None) -> ConsumerRecord:
    return ConsumerRecord(topic, 2, offset, 0, 0, key, value, None, 0, 0, [])


def test_partials_tail_skips_what_it_cannot_read_and_goes_on(caplog):
    view = PartialsView()
    skipped = []
    tail = partials_tail(view, PARTIALS, {}, on_skipped=lambda: skipped.append(1))
    good = partial_key(VIEWS, 0, W47, "s\x1fx")
    records = [
        rec(PARTIALS, 10, b"views\x1f0\x1f1794787200000\x1finvestor", views_partial(1, [])),
        rec(PARTIALS, 11, None, views_partial(1, [])),
        rec(PARTIALS, 12, good, b"{not json"),
        rec(PARTIALS, 13, good, views_partial(3, [["p", 3]])),
    ]

    with caplog.at_level(logging.WARNING, logger="app.readmodels.tail"):
        taken = [tail.take(r) for r in records]

    assert taken == [False, False, False, True]
    assert tail.skipped == 3 and len(skipped) == 3
    assert view.segment_week("s\x1fx", W47) == SegmentWeek(3, 0, [["p", 3]])
    assert view.segments(W47) == ["s\x1fx"]
    logged = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in logged] == [
        f"skipped {PARTIALS}[2]@10", f"skipped {PARTIALS}[2]@11", f"skipped {PARTIALS}[2]@12"
    ]


@pytest.mark.parametrize("value", [b"\xff", b"[1, 2]", b'"text"', b"{}", b'{"insightId": [1]}'])
def test_insights_tail_skips_values_that_are_not_insights(value):
    memory = InsightsMemory(10)
    tail = TopicTail(INSIGHTS, {}, memory.apply)
    insight = {"insightId": "i-1", "type": "PropertyHourlySpike"}

    assert tail.take(rec(INSIGHTS, 0, None, value)) is False
    assert tail.take(rec(INSIGHTS, 1, None, orjson.dumps(insight))) is True

    assert tail.skipped == 1
    assert memory.latest(10) == [insight]
