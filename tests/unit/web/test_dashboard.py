"""The dashboard's merge of every worker's share: a property counted once (with its higher
count while two workers report its partition), partitions whose owner did not answer listed
as missing, counters and rates added up over the workers that answered."""

from __future__ import annotations

import orjson

from app.metrics import Metrics, RateSampler
from app.web.dashboard import (
    merge,
    merged_series,
    merged_top,
    records_behind,
    share_problem,
    standby_summary,
    worker_summary,
)
from app.windows import iso_ms

VIEWS = "property.views"
HOUR = 1_795_183_200_000  # 2026-11-20T14:00:00Z, a Friday
NOW = HOUR + 754_321  # 14:12:34.321
WEEK = 1_794_787_200_000  # its ISO week: Monday 2026-11-16


INVESTOR = {"segment": "investor", "views": 7, "uniqueUsers": 2,
            "topProperties": [{"propertyId": "p1", "views": 7}]}


def row(prop: str, views: int, users: int = 1) -> dict:
    return {"propertyId": prop, "views": views, "uniqueUsers": users}


def share(url: str, partitions: list[int], top: list[dict], **extra: object) -> dict:
    return {
        "url": url,
        "ready": True,
        "partitions": partitions,
        "top": top,
        "views": sum(r["views"] for r in top),
        "properties": len(top),
        "eventsPerSecond": None,
        "series": [],
        "totals": {},
        "rejectedByReason": {},
        "lag": [],
        **extra,
    }


def merged(shares: list[dict], limit: int = 10, partitions: int = 6) -> dict:
    return merge(
        shares,
        HOUR,
        limit,
        now_ms=NOW,
        views_topic=VIEWS,
        partitions=partitions,
        segments_of_week=lambda week: ([INVESTOR], 3) if week == WEEK else ([], 0),
    )


def test_the_top_is_global_and_a_property_reported_twice_counts_once_with_its_higher_count():
    a = share("http://a", [0, 1, 2], [row("p1", 9), row("p2", 5), row("p3", 5)])
    # mid-rebalance, b reports partition 2 too, with an older (lower) count of p2
    b = share("http://b", [2, 3, 4, 5], [row("p2", 4), row("p4", 7), row("p0", 5)])

    summary = merged([a, b], limit=4)

    assert summary["topProperties"] == [row("p1", 9), row("p4", 7), row("p0", 5), row("p2", 5)]
    assert summary["partitions"] == {"total": 6, "covered": [0, 1, 2, 3, 4, 5], "missing": []}


def test_a_worker_that_did_not_answer_leaves_its_partitions_missing_and_adds_nothing():
    a = share(
        "http://a", [0, 1], [row("p1", 3)],
        eventsPerSecond=10.0, totals={"consumed": 100, "accepted": 90},
        rejectedByReason={"bad_json": 4},
        lag=[{"topic": VIEWS, "partition": 1, "lag": 5}],
    )
    down = {"url": "http://b", "error": "did not answer: TimeoutError", "partitions": []}

    summary = merged([a, down])

    assert summary["partitions"]["missing"] == [2, 3, 4, 5]
    assert summary["workers"] == [
        {"url": "http://a", "ready": True, "partitions": [0, 1], "eventsPerSecond": 10.0,
         "standbys": {"partitions": [], "lag": 0}},
        {"url": "http://b", "ready": False, "partitions": [], "eventsPerSecond": None,
         "standbys": {"partitions": [], "lag": 0}, "error": "did not answer: TimeoutError"},
    ]
    assert summary["hourViews"] == 3 and summary["hourProperties"] == 1
    assert summary["totals"] == {"consumed": 100, "accepted": 90}
    assert summary["rejectedByReason"] == {"bad_json": 4}
    assert summary["throughput"]["eventsPerSecond"] == 10.0


def test_counters_rates_and_lag_add_up_over_the_workers():
    a = share(
        "http://a", [0, 1, 2], [],
        eventsPerSecond=10.0, series=[1.0, 2.0, 3.0],
        totals={"consumed": 100, "late": 1}, rejectedByReason={"late": 2},
        lag=[
            {"topic": VIEWS, "partition": 2, "lag": 3},
            {"topic": "views-by-user", "partition": 0, "lag": 50},  # another stage's input
        ],
    )
    b = share(
        "http://b", [3, 4, 5], [],
        eventsPerSecond=2.5, series=[10.0],  # started later: its series is shorter
        totals={"consumed": 20}, rejectedByReason={"late": 1, "bad_json": 1},
        lag=[{"topic": VIEWS, "partition": 0, "lag": 1}],
    )

    summary = merged([a, b])

    assert summary["throughput"] == {"eventsPerSecond": 12.5, "series": [1.0, 2.0, 13.0]}
    assert summary["totals"] == {"consumed": 120, "late": 1}
    assert summary["rejectedByReason"] == {"late": 3, "bad_json": 1}
    assert summary["lag"] == {
        "total": 4,
        "partitions": [
            {"topic": VIEWS, "partition": 0, "lag": 1},
            {"topic": VIEWS, "partition": 2, "lag": 3},
        ],
    }


def test_no_rates_yet_is_none_not_zero_and_the_windows_are_the_current_ones():
    summary = merged([share("http://a", list(range(6)), [])])
    assert summary["throughput"] == {"eventsPerSecond": None, "series": []}
    assert summary["generatedAt"] == "2026-11-20T14:12:34Z"
    assert summary["hour"] == {"windowStart": iso_ms(HOUR), "windowEnd": "2026-11-20T15:00:00Z"}
    assert summary["week"] == {
        "windowStart": "2026-11-16T00:00:00Z", "windowEnd": "2026-11-23T00:00:00Z",
        "segments": [INVESTOR], "segmentCount": 3, "behind": 0,
    }


def test_merged_top_and_series_on_their_own():
    assert merged_top([{"top": [row("b", 2), row("a", 2)]}, {"top": [row("c", 1)]}], 2) == [
        row("a", 2), row("b", 2)
    ]
    assert merged_series([[1.0], [], [2.0, 3.0]]) == [2.0, 4.0]
    assert merged_series([]) == []


def test_a_workers_own_share_passes_the_check_a_peer_share_must_pass():
    """What ``Shares.local`` sends, as a peer receives it, is never refused by the merge's
    guard (else every worker would see every other one as failed)."""
    metrics, rates = Metrics(), RateSampler()
    metrics.declare_topics(VIEWS, "user.profiles")
    metrics.events_consumed.labels(VIEWS).inc(5)
    metrics.consumer_lag.labels(VIEWS, "3").set(2)
    rates.sample(0.0, metrics.snapshot(VIEWS))
    rates.sample(1.0, metrics.snapshot(VIEWS))
    own = share("http://a", [3], [row("p", 1)], **worker_summary(metrics, rates, VIEWS))

    received = orjson.loads(orjson.dumps(own))

    assert share_problem(received) is None
    assert received["lag"] == [{"topic": VIEWS, "partition": 3, "lag": 2}]
    assert share_problem({**received, "top": [{"propertyId": "p", "views": "many"}]}) == (
        "a share with missing or wrong top"
    )


def test_top_rows_carry_their_property_title_and_status_when_it_exists():
    from app.properties.aggregate import PropertyState
    from app.web.dashboard import share_problem, with_properties

    states = {"p1": PropertyState("p1", "rented", 3, 0, 1, {"title": "Loft", "price": 1})}
    rows = [{"propertyId": "p1", "views": 5, "uniqueUsers": 2},
            {"propertyId": "p2", "views": 4, "uniqueUsers": 1}]
    assert with_properties(rows, states.get) == [
        {"propertyId": "p1", "views": 5, "uniqueUsers": 2, "title": "Loft", "status": "rented"},
        {"propertyId": "p2", "views": 4, "uniqueUsers": 1},
    ]
    share = {"url": "u", "ready": True, "partitions": [0], "views": 9, "properties": 2,
             "eventsPerSecond": None, "series": [], "totals": {}, "rejectedByReason": {},
             "lag": [], "top": with_properties(rows, states.get)}
    assert share_problem(share) is None
    share["top"][0]["title"] = {"<b>": 1}
    assert "top" in share_problem(share)


def test_how_far_each_number_trails_the_stream():
    assert records_behind(99, 100) == 0  # everything up to the end committed
    assert records_behind(89, 100) == 10
    assert records_behind(-1, 5) == 5  # nothing committed yet
    assert records_behind(5, None) is None  # end not fetched yet: unknown, not 0
    a = share("http://a", [0, 1], [{**row("p1", 9), "behind": 4}],
              behind=[{"partition": 0, "records": 4}, {"partition": 1, "records": 0}])
    # mid-rebalance b reports partition 1 too; an older peer reports nothing
    b = share("http://b", [1, 2], [], behind=[{"partition": 1, "records": 7}])
    old = share("http://c", [3], [])
    assert share_problem(a) is None and share_problem(old) is None
    assert share_problem({**b, "behind": [{"partition": "x", "records": 1}]}) is not None
    a["weekBehind"] = [{"partition": 0, "records": 9}]
    assert share_problem({**a, "weekBehind": 3}) is not None
    summary = merged([a, b, old])
    assert summary["week"]["behind"] == 9
    assert merged([old])["week"]["behind"] == 0
    assert summary["topProperties"][0]["behind"] == 4
    assert summary["behind"] == {
        "total": 4,
        "partitions": [{"partition": 0, "records": 4}, {"partition": 1, "records": 0}],
    }


def test_each_worker_lists_its_standby_partitions_and_their_summed_lag():
    held = {("views", 4), ("properties", 4), ("views", 5), ("segment-users", 5)}
    lag = {("views", 4): 3, ("properties", 4): 0, ("views", 5): 7}  # one not fetched yet
    standbys = standby_summary(held, lag)
    assert standbys == {"partitions": [4, 5], "lag": 10}
    a = share("http://a", [0, 1, 2], [], standbys=standbys)
    old = share("http://b", [3, 4, 5], [])  # a peer without standbys in its share
    assert share_problem(a) is None and share_problem(old) is None
    workers = merged([a, old])["workers"]
    assert [w["standbys"] for w in workers] == [standbys, {"partitions": [], "lag": 0}]


def test_a_share_with_malformed_standbys_is_left_out():
    for bad in (3, {"partitions": [1]}, {"partitions": ["1"], "lag": 0},
                {"partitions": [True], "lag": 0}, {"partitions": [1], "lag": "x"}):
        assert "standbys" in share_problem(share("http://a", [0], [], standbys=bad))
