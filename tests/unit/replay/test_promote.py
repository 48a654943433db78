"""What a promotion copies: insights the live topic lacks (not the warm-up ones), dead letters
from the live app's position on; and when it must refuse."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.replay.promote import Plan, behind, dead_letters_after, in_warm_up, plan_insights
from app.windows import HOUR_MS, WEEK_MS, iso_ms, parse_iso

FROM = parse_iso("2026-11-22T02:07:00Z")  # a Sunday: hours from 03:00, weeks from Monday 23rd


@dataclass
class Record:
    partition: int = 0
    offset: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: tuple = ()


def letter(partition: int, offset: int) -> Record:
    return Record(partition, 7, b"k", b"v", (("dlq.origin.partition", b"%d" % partition),
                                            ("dlq.origin.offset", b"%d" % offset)))


def insight(kind: str, start: str) -> dict:
    return {"insightId": f"{kind}:p:{start}", "type": kind, "windowStart": start}


def test_warm_up():
    spike, trend = "property_hourly_spike", "segment_property_trend"
    first_spike = parse_iso("2026-11-22T03:00:00Z") + 24 * HOUR_MS
    assert in_warm_up(insight(spike, iso_ms(first_spike - HOUR_MS)), FROM, 24)
    assert not in_warm_up(insight(spike, iso_ms(first_spike)), FROM, 24)
    monday = parse_iso("2026-11-23T00:00:00Z")
    assert in_warm_up(insight(trend, iso_ms(monday)), FROM, 24)
    assert not in_warm_up(insight(trend, iso_ms(monday + WEEK_MS)), FROM, 24)
    assert in_warm_up({"type": "other", "windowStart": iso_ms(monday)}, FROM, 24)
    assert in_warm_up({}, FROM, 24)


def test_dead_letters_from_the_live_position_on():
    letters = [letter(0, 4), letter(0, 5), letter(1, 0), Record(0, 9, b"k", b"v", ())]
    kept = dead_letters_after(letters, {0: 5})
    assert kept == [letters[1], letters[2]]  # partition 1: no live position, all of it


def test_behind_names_each_partition():
    assert behind({0: 10, 1: 5}, {0: 10, 1: 4}, "views") == ["views[1]: shadow at 4, live at 5"]
    assert behind({0: 10}, {}, "views") == ["views[0]: shadow at 0, live at 10"]
    assert behind({}, {0: 3}, "views") == []


def test_plan_insights():
    records = [Record(value=orjson.dumps(doc)) for doc in (
        insight("property_hourly_spike", "2026-11-25T10:00:00Z"),  # new
        insight("property_hourly_spike", "2026-11-25T11:00:00Z"),  # already live
        insight("property_hourly_spike", "2026-11-22T10:00:00Z"),  # warm-up
        insight("property_hourly_spike", "2026-11-25T10:00:00Z"),  # a second copy
    )] + [Record(value=b"not json")]
    plan = Plan()
    live = {"property_hourly_spike:p:2026-11-25T11:00:00Z"}
    plan_insights(plan, live, records, lambda doc: in_warm_up(doc, FROM, 24), "out", lambda k: 3)
    assert [(t, p, k) for t, p, k, _, _ in plan.insights] == [
        ("out", 3, b"property_hourly_spike:p:2026-11-25T10:00:00Z")]
    assert (plan.already_live, plan.warm_up_left) == (1, 1)
