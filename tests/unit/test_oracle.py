"""The tests' oracle (tests/support/oracle.py) on records whose answers are worked out by hand,
and its calendar against the product's window functions: two implementations written apart
must agree."""

from __future__ import annotations

import json

from hypothesis import given, strategies as st

from app.windows import MAX_MS, hour_start, iso_ms, week_start
from tests.support.oracle import HOUR, MIN, WEEK, Oracle, hour_of, iso, pct, week_of

MON = 1_794_787_200_000  # 2026-11-16T00:00:00Z, a Monday


def view(event_id: str, ts: int, prop: str = "p", user: str = "u", **extra: object) -> bytes:
    return json.dumps({"eventId": event_id, "timestamp": iso(ts), "propertyId": prop,
                       "userId": user, **extra}).encode()


def feed(oracle: Oracle, *values: bytes, partition: int = 0, key: bytes = b"p") -> list[str]:
    start = oracle.records
    return [oracle.add_view(partition, start + i, key, v) for i, v in enumerate(values)]


@given(st.integers(min_value=0, max_value=MAX_MS))
def test_the_calendar_agrees_with_the_product_windows(ms):
    assert hour_of(ms) == hour_start(ms)
    assert week_of(ms) == week_start(ms)
    assert iso(ms) == iso_ms(ms)


def test_ids_in_insight_ids_are_percent_encoded():
    assert pct("prop-812") == "prop-812"
    assert pct("a:b") == "a%3Ab"
    assert pct("é ~") == "%C3%A9%20~"


def test_duplicates_lateness_and_stream_time_per_partition():
    oracle = Oracle(now_ms=MON + 2 * WEEK)
    t = MON + 3 * HOUR
    assert feed(oracle, view("a", t), view("a", t), view("b", t + 2 * HOUR)) == \
        ["accepted", "duplicate", "accepted"]
    # 75 min behind stream time: late for its hour (end + 15 min <= stream time), not its week
    assert feed(oracle, view("c", t + 45 * MIN - 75 * MIN)) == ["accepted"]
    assert oracle.stats["hourly_late"] == 1
    assert oracle.hour_answer("p", MON + 2 * HOUR)["views"] == 0
    assert oracle.week_answer("unknown", MON)["views"] == 3
    # The week before ended more than 1 h ago: late for both, a dead letter.
    assert feed(oracle, view("d", MON - HOUR)) == ["late"]
    # Another partition has its own stream time.
    assert feed(oracle, view("e", MON - HOUR, prop="q"), partition=1, key=b"q") == ["accepted"]
    assert oracle.stream_time == {0: t + 2 * HOUR, 1: MON - HOUR}
    assert oracle.partition_of == {"p": 0, "q": 1}


def test_bad_records_get_the_documented_reasons():
    oracle = Oracle(now_ms=MON)
    cases = {
        b"{": "malformed_json",
        b"[]": "bad_type",
        json.dumps({"n": json.loads('{"a":' * 40 + "1" + "}" * 40)}).encode(): "malformed_json",
        view("x", MON, version="3.0"): "unsupported_version",
        view("x", MON, version=2): "bad_type",
        view("x", MON + 6 * MIN): "future_timestamp",
        view("x", MON, user="u\x7f"): "bad_id",
        view("x", MON, user=12): "bad_type",
        json.dumps({"eventId": "x", "propertyId": "p", "userId": "u"}).encode(): "missing_field",
        json.dumps({"eventId": "x", "timestamp": "2026-11-16T00:00:00", "propertyId": "p",
                    "userId": "u"}).encode(): "bad_timestamp",
        view("x", MON, notes="x" * 64 * 1024): "oversized",
        view("x", MON, prop="other"): "key_mismatch",
    }
    assert feed(oracle, *cases) == list(cases.values())
    assert oracle.records == len(cases) and not oracle.stats["accepted"]


def test_a_spike_holds_at_three_times_the_baseline_and_once():
    oracle = Oracle(now_ms=MON + WEEK)
    hour = MON + 30 * HOUR
    baseline = [view(f"b{h}-{i}", hour - h * HOUR) for h in range(1, 25) for i in range(7)]
    feed(oracle, *sorted(baseline, key=lambda v: json.loads(v)["timestamp"]))
    feed(oracle, *(view(f"s{i}", hour + i * MIN) for i in range(20)))
    assert not oracle.spikes  # 20 x 24 < 3 x 168
    feed(oracle, view("s20", hour + 20 * MIN), view("s21", hour + 21 * MIN))
    assert oracle.spikes == {("p", hour): 21}
    spikes = [i for i in oracle.insights() if i.startswith("property_hourly_spike")]
    assert spikes == ["property_hourly_spike:p:2026-11-17T06:00:00Z"]


def test_a_trend_holds_at_twice_last_week_under_the_users_segment():
    oracle = Oracle(now_ms=MON + 2 * WEEK)
    oracle.add_profile(b"u", json.dumps({"userId": "u", "segment": "investor"}).encode())
    feed(oracle, *(view(f"a{i}", MON - WEEK + i * MIN) for i in range(30)))
    feed(oracle, *(view(f"b{i}", MON + i * MIN) for i in range(59)))
    assert not oracle.trends
    feed(oracle, view("b59", MON + 59 * MIN))
    assert oracle.trends == {("investor", "p", MON): (60, 30)}
    assert oracle.first_views()["segment_property_trend:investor:p:2026-11-16T00:00:00Z"] == (60, 30)
    assert oracle.week_answer("investor", MON)["topProperties"] == [{"propertyId": "p", "views": 60}]


def test_profiles_apply_in_order_and_bad_ones_change_nothing():
    oracle = Oracle(now_ms=MON)
    doc = {"userId": "u", "segment": "renter", "version": "2.0"}
    assert oracle.add_profile(b"u", json.dumps(doc).encode()) is None
    assert oracle.add_profile(b"u", json.dumps({**doc, "segment": "x\x00"}).encode()) == "bad_id"
    assert oracle.add_profile(b"v", json.dumps(doc).encode()) == "key_mismatch"
    assert oracle.segments() == {"u": "renter"} and oracle.profiles["u"] == doc
    assert oracle.add_profile(b"u", None) is None and oracle.segments() == {}


def test_a_lower_spike_ratio_given_to_the_oracle_holds_exactly_at_its_boundary():
    hour = MON + 30 * HOUR
    baseline = [view(f"b{h}-{i}", hour - h * HOUR) for h in range(1, 25) for i in range(10)]
    baseline.sort(key=lambda v: json.loads(v)["timestamp"])
    burst = [view(f"s{i}", hour + i * MIN) for i in range(30)]
    lower, default = Oracle(now_ms=MON + WEEK, spike_ratio=2.5), Oracle(now_ms=MON + WEEK)
    for oracle in (lower, default):
        feed(oracle, *baseline, *burst[:24])
    assert not lower.spikes and not default.spikes  # 24 x 24 < 2.5 x 240
    for oracle in (lower, default):
        feed(oracle, burst[24])
    assert lower.spikes == {("p", hour): 25} and not default.spikes  # 25 x 24 == 2.5 x 240
    feed(default, *burst[25:])
    assert default.spikes == {("p", hour): 30}  # 30 x 24 == 3 x 240


def test_thresholds_are_read_as_written_decimals_and_minimums_apply():
    # 1.1 x 50 is 55.00000000000001 in floats: the trend must still hold at exactly 55.
    oracle = Oracle(now_ms=MON + 2 * WEEK, trend_ratio=1.1, trend_min=40)
    feed(oracle, *(view(f"a{i}", MON - WEEK + i * MIN) for i in range(50)))
    assert oracle.trends == {("unknown", "p", MON - WEEK): (40, 0)}  # the minimum, no history
    feed(oracle, *(view(f"b{i}", MON + i * MIN) for i in range(54)))
    assert ("unknown", "p", MON) not in oracle.trends
    feed(oracle, view("b54", MON + 54 * MIN))
    assert oracle.trends[("unknown", "p", MON)] == (55, 50)
    # No baseline at all: only the minimum holds a spike back.
    oracle = Oracle(now_ms=MON + WEEK, spike_min=3, baseline_hours=2)
    assert feed(oracle, *(view(f"s{i}", MON + i * MIN) for i in range(2))) == ["accepted"] * 2
    assert not oracle.spikes
    feed(oracle, view("s2", MON + 2 * MIN))
    assert oracle.spikes == {("p", MON): 3}
