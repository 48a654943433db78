"""What a promotion copies: insights the live topic lacks (not the warm-up ones), dead letters
from the live app's position on; and when it must refuse."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
from aiokafka import TopicPartition

from app.replay.promote import (
    Plan,
    behind,
    dead_letters_after,
    in_warm_up,
    lagging,
    plan_insights,
    positions_of,
    routes,
)
from app.replay.shadow import Shadow
from app.settings import Settings
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


def test_a_rented_property_demand_is_copied_from_the_first_whole_hour_on():
    """Its hour's views and the property's state at each view: only the hour --from falls in
    is partial in the shadow (it reads the property events whole)."""
    demand = "rented_property_demand"
    first = parse_iso("2026-11-22T03:00:00Z")
    assert in_warm_up(insight(demand, iso_ms(first - HOUR_MS)), FROM, 24)
    assert not in_warm_up(insight(demand, iso_ms(first)), FROM, 24)
    assert not in_warm_up(insight(demand, iso_ms(first + 30 * HOUR_MS)), FROM, 24)
    plan = Plan()
    records = [Record(value=orjson.dumps(insight(demand, "2026-11-22T05:00:00Z")))]
    plan_insights(plan, set(), records, lambda doc: in_warm_up(doc, FROM, 24), "out", lambda k: 0)
    assert [k for _, _, k, _, _ in plan.insights] == [
        b"rented_property_demand:p:2026-11-22T05:00:00Z"]


def settings_pair() -> tuple[Settings, Settings]:
    live = Settings()
    return live, Shadow("lower", live).settings()


def test_every_input_is_checked_and_its_dead_letters_copied():
    live, shadow = settings_pair()
    got = {(r.source, r.live_dlq, r.shadow_dlq) for r in routes(live, shadow)}
    assert got == {
        ("property.views", "property.views.dlq", "lower.property.views.dlq"),
        ("user.profiles", "user.profiles.dlq", "lower.user.profiles.dlq"),
        ("property.events", "property.events.dlq", "lower.property.events.dlq"),
    }


@dataclass(frozen=True)
class Meta:
    offset: int


def test_a_shadow_behind_on_the_property_events_is_refused():
    live, shadow = settings_pair()
    inputs = [r.source for r in routes(live, shadow)]
    live_committed = {
        TopicPartition("property.views", 0): Meta(10),
        TopicPartition("property.events", 0): Meta(8),
        TopicPartition("property.events", 3): Meta(2),
        TopicPartition("elsewhere", 0): Meta(99),
    }
    shadow_committed = {
        TopicPartition("property.views", 0): Meta(12),
        TopicPartition("property.events", 0): Meta(7),
        TopicPartition("property.events", 3): Meta(2),
    }
    live_pos = positions_of(live_committed, inputs)
    shadow_pos = positions_of(shadow_committed, inputs)
    assert live_pos["property.events"] == {0: 8, 3: 2} and "elsewhere" not in live_pos
    assert lagging(live_pos, shadow_pos, inputs) == [
        "property.events[0]: shadow at 7, live at 8"]
    shadow_pos["property.events"][0] = 8
    assert lagging(live_pos, shadow_pos, inputs) == []


def test_property_event_dead_letters_from_the_live_position_on():
    live, shadow = settings_pair()
    route = next(r for r in routes(live, shadow) if r.source == live.property_events_topic)
    letters = [letter(0, 3), letter(0, 8), letter(2, 1)]
    kept = dead_letters_after(letters, {0: 8, 2: 5})
    assert kept == [letters[1]] and route.live_dlq == "property.events.dlq"
