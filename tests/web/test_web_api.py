"""CONTRACT §6 over HTTP on two real workers fed with the seeded workload: every endpoint on
both, keys owned by one worker answered by the other, 400/404 answers, the dashboard summary,
/metrics, and the API's latency under a small load."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.web.routing import partition_of
from app.windows import HOUR_MS, hour_start, iso_ms, parse_iso, week_start
from tests.web._cluster import PARTITIONS, eventually, property_in

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


async def test_every_endpoint_on_both_workers_with_cross_routing(cluster):
    exp = cluster.expected
    a, b = cluster.workers
    owned_a, owned_b = await cluster.owned()
    assert owned_a.isdisjoint(owned_b) and owned_a | owned_b == set(range(PARTITIONS))
    prop_a = property_in(owned_a)  # lives on worker A
    prop_b = property_in(owned_b)  # lives on worker B
    now_hour = hour_start(cluster.now_ms)
    busy = [h for (p, h) in exp.hourly if p == prop_a]
    assert busy, "the workload has views of the property"

    for worker in (a, b):
        status, body = await worker.get("/health")
        assert (status, body) == (200, {"status": "ok"})
        status, body = await worker.get("/ready")
        assert status == 200 and body["ready"] is True and body["tableRecovery"] is True
        assert body["stalled"] is None  # no commit waits on the brokers

        for prop in (prop_a, prop_b):  # one asked of its owner, the other forwarded to it
            for hour in (now_hour, max(busy), now_hour - 30 * HOUR_MS):
                path = f"/api/properties/{prop}/views?hour={iso_ms(hour)}"
                status, body = await worker.get(path)
                assert status == 200, (worker.port, path, body)
                assert body == exp.hour_answer(prop, hour), (worker.port, path)
            start = now_hour - 23 * HOUR_MS
            path = f"/api/properties/{prop}/views/history?from={iso_ms(start)}&to={iso_ms(now_hour + HOUR_MS)}"
            status, body = await worker.get(path)
            assert status == 200, body
            assert body == {
                "propertyId": prop,
                "windows": [exp.hour_answer(prop, start + k * HOUR_MS) for k in range(24)],
            }

        for segment, week in exp.weekly:
            answer = exp.week_answer(segment, week)

            async def week_equal(worker=worker, segment=segment, week=week, answer=answer):
                status, body = await worker.get(f"/api/segments/{segment}/weeks/{iso_ms(week)[:10]}")
                assert (status, body) == (200, answer)

            await eventually(week_equal, timeout=20)
        status, body = await worker.get(f"/api/segments/investor/weeks/{iso_ms(week_start(cluster.now_ms) + 7 * 24 * HOUR_MS)}")
        assert status == 200 and body["views"] == 0 and body["uniqueUsers"] == 0 and body["topProperties"] == []

        for user in ("user-1", "user-2", "user-3"):
            if user in exp.profiles:
                status, body = await worker.get(f"/api/users/{user}")
                assert (status, body) == (200, exp.profiles[user])

    # Insights: every worker tails the same topic, so both give the same list, newest first.
    async def same_insights():
        _, got_a = await a.get("/api/insights?limit=500")
        _, got_b = await b.get("/api/insights?limit=500")
        assert got_a["insights"] and got_a == got_b
        return got_a["insights"]

    insights = await eventually(same_insights, timeout=20)
    assert len({i["insightId"] for i in insights}) == len(insights)
    status, body = await a.get("/api/insights?limit=2")
    assert status == 200 and body["insights"] == insights[:2]
    status, body = await b.get("/api/insights?type=property_hourly_spike")
    assert status == 200 and body["insights"]
    assert {i["type"] for i in body["insights"]} == {"property_hourly_spike"}
    for insight in body["insights"]:
        spike = insight["metrics"]
        hour = parse_iso(insight["windowStart"])
        views = exp.hour_answer(insight["subject"]["propertyId"], hour)["views"]
        assert spike["views"] <= views and spike["views"] >= 20

    # The dashboard's own pages are served by every worker.
    for worker in (a, b):
        async with aiohttp.ClientSession() as session:
            for path, kind in (("/", "text/html"), ("/static/dashboard.js", "application/javascript"),
                               ("/static/dashboard.css", "text/css")):
                async with session.get(worker.url + path) as response:
                    assert response.status == 200 and response.content_type == kind, path
                    assert len(await response.read()) > 500


def counted(rows: list[dict]) -> list[dict]:
    """The dashboard's top rows without how far each trails the stream (``behind``)."""
    return [{k: v for k, v in row.items() if k != "behind"} for row in rows]


async def test_dashboard_summary_gathers_every_partition(cluster):
    exp = cluster.expected
    hour = hour_start(cluster.now_ms)
    async def lag_measured():  # consumer lag is measured every 5 s
        for worker in cluster.workers:
            _, body = await worker.get("/api/dashboard")
            assert body["lag"]["total"] == 0 and len(body["lag"]["partitions"]) == PARTITIONS

    await eventually(lag_measured, timeout=20)
    for worker in cluster.workers:
        status, body = await worker.get(f"/api/dashboard?hour={iso_ms(hour)}&limit=10")
        assert status == 200, body
        assert body["hour"] == {"windowStart": iso_ms(hour), "windowEnd": iso_ms(hour + HOUR_MS)}
        assert body["partitions"]["covered"] == list(range(PARTITIONS))
        assert body["partitions"]["missing"] == []
        assert counted(body["topProperties"]) == exp.top_of_hour(hour, 10)
        # all processed and committed: no number trails the stream
        assert [row["behind"] for row in body["topProperties"]] == [0] * 10
        assert body["behind"] == {
            "total": 0, "partitions": [{"partition": p, "records": 0} for p in range(PARTITIONS)]
        }
        assert body["hourViews"] == exp.hour_total(hour)
        assert len(body["workers"]) == 2 and all(w["ready"] and "error" not in w for w in body["workers"])
        assert body["lag"]["total"] == 0
        assert body["totals"]["accepted"] == exp.stats["accepted"]
        assert body["totals"]["duplicate"] == exp.stats["duplicate"]
        assert body["rejectedByReason"] == dict(Counter(exp.dlq.values()))
        segments = {s for s, w in exp.weekly if w == week_start(cluster.now_ms)}
        assert body["week"]["segmentCount"] == len(segments)
        assert body["week"]["behind"] == 0  # the segment shares reflect every view
        assert {s["segment"] for s in body["week"]["segments"]} == segments  # fewer than 12
        # The hour's properties, from each partition's summary of the hour.
        assert body["hourProperties"] == sum(1 for _, h in exp.hourly if h == hour)
        # An earlier hour, asked explicitly, is gathered the same way.
        earlier = hour - 5 * HOUR_MS
        status, body = await worker.get(f"/api/dashboard?hour={iso_ms(earlier)}&limit=3")
        assert status == 200 and counted(body["topProperties"]) == exp.top_of_hour(earlier, 3)
        status, body = await worker.get(f"/api/dashboard?hour={iso_ms(earlier)}&limit=50")
        assert status == 200 and counted(body["topProperties"]) == exp.top_of_hour(earlier, 50)


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("/api/properties/prop-1/views", "'hour' is required"),
        ("/api/properties/prop-1/views?hour=yesterday", "hour"),
        ("/api/properties/prop-1/views?hour=2026-13-01T00:00:00Z", "hour"),
        ("/api/properties/prop-1/views/history?from=2026-11-20T10:00:00Z", "'to' is required"),
        ("/api/properties/prop-1/views/history?from=nope&to=2026-11-20T10:00:00Z", "from"),
        ("/api/properties/prop-1/views/history?from=2026-11-20T10:00:00Z&to=2026-11-20T09:00:00Z", "after"),
        ("/api/properties/prop-1/views/history?from=2026-11-20T10:00:00Z&to=2026-11-20T10:00:00Z", "after"),
        ("/api/properties/prop-1/views/history?from=2026-01-01T00:00:00Z&to=2026-11-20T10:00:00Z", "at most"),
        ("/api/segments/investor/weeks/2026-11-24", "Monday"),
        ("/api/segments/investor/weeks/2026-11-23T01:00:00Z", "Monday"),
        ("/api/segments/investor/weeks/last-week", "date"),
        ("/api/insights?limit=0", "limit"),
        ("/api/insights?limit=501", "limit"),
        ("/api/insights?limit=ten", "limit"),
        ("/api/insights?type=property_viewed", "type"),
        ("/api/dashboard?limit=0", "limit"),
        ("/api/dashboard?hour=soon", "hour"),
    ],
)
async def test_bad_parameters_answer_400_json(cluster, path, fragment):
    for worker in cluster.workers:
        async with aiohttp.ClientSession() as session:
            async with session.get(worker.url + path) as response:
                assert response.status == 400, (path, await response.text())
                assert response.content_type == "application/json"
                body = await response.json()
        assert set(body) == {"error"} and fragment in body["error"], body


async def test_unknown_user_is_404_json_and_faust_tables_are_off(cluster):
    for worker in cluster.workers:
        status, body = await worker.get("/api/users/user-that-never-was")
        assert status == 404 and set(body) == {"error"}
        for path in ("/table", "/table/", "/table/profiles", "/table/profiles/user-1"):
            status, _ = await worker.get(path)
            assert status == 404, path


EXPECTED_FAMILIES = {
    # name as parsed (counters lose "_total") -> type
    "property_analytics_events_consumed": "counter",
    "property_analytics_events_accepted": "counter",
    "property_analytics_events_duplicate": "counter",
    "property_analytics_events_late": "counter",
    "property_analytics_events_rejected": "counter",
    "property_analytics_events_replayed": "counter",
    "property_analytics_events_reread": "counter",
    "property_analytics_insights_emitted": "counter",
    "property_analytics_consumer_lag_records": "gauge",
    "property_analytics_processing_latency_event_time_seconds": "histogram",
    "property_analytics_processing_latency_receive_seconds": "histogram",
    "property_analytics_table_keys": "gauge",
    "property_analytics_rocksdb_memory_bytes": "gauge",
    "property_analytics_owned_partitions": "gauge",
    "property_analytics_table_recovery_complete": "gauge",
    "property_analytics_ready": "gauge",
    "property_analytics_commits_stalled": "gauge",
    "property_analytics_commit_wait_seconds": "gauge",
    "property_analytics_commit_errors": "counter",
}


async def scrape(worker) -> dict:
    async with aiohttp.ClientSession() as session:
        async with session.get(worker.url + "/metrics") as response:
            assert response.status == 200 and response.content_type == "text/plain"
            text = await response.text()
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(family, name: str, **labels: str) -> float:
    return sum(
        s.value for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def test_metrics_cover_the_contract(cluster):
    exp = cluster.expected
    views_topic = cluster.env["VIEWS_TOPIC"]
    owned = await cluster.owned()

    async def measured():  # table sizes are refreshed every 10 s, consumer lag every 5 s
        families = [await scrape(w) for w in cluster.workers]
        for fam, mine in zip(families, owned, strict=True):
            assert value(fam["property_analytics_table_keys"], "property_analytics_table_keys", store="views") > 0
            lag = fam["property_analytics_consumer_lag_records"]
            lag_views = {int(s.labels["partition"]): s.value for s in lag.samples if s.labels["topic"] == views_topic}
            assert set(lag_views) == mine, "one lag series per owned views partition, no stale ones"
            assert all(v == 0 for v in lag_views.values()), lag_views
        return families

    scraped = await eventually(measured, timeout=25)
    totals: dict[str, float] = {}
    by_reason: Counter = Counter()
    for families, mine in zip(scraped, owned, strict=True):
        for name, kind in EXPECTED_FAMILIES.items():
            assert name in families, f"{name} missing"
            assert families[name].type == kind, (name, families[name].type)
            assert "_created" not in " ".join(s.name for s in families[name].samples)
        consumed = families["property_analytics_events_consumed"]
        totals["consumed"] = totals.get("consumed", 0) + value(
            consumed, "property_analytics_events_consumed_total", topic=views_topic)
        for key in ("accepted", "duplicate"):
            fam = families[f"property_analytics_events_{key}"]
            totals[key] = totals.get(key, 0) + value(fam, f"property_analytics_events_{key}_total")
        rejected = families["property_analytics_events_rejected"]
        for sample in rejected.samples:
            if sample.name.endswith("_total") and sample.labels["topic"] == views_topic and sample.value:
                by_reason[sample.labels["reason"]] += sample.value
        reasons = {s.labels["reason"] for s in rejected.samples if s.labels["topic"] == views_topic}
        assert {"malformed_json", "late", "future_timestamp", "oversized"} <= reasons
        insights = families["property_analytics_insights_emitted"]
        types = {s.labels["type"] for s in insights.samples}
        assert {"property_hourly_spike", "segment_property_trend"} <= types <= {
            "property_hourly_spike", "segment_property_trend", "rented_property_demand"}
        totals["insights"] = totals.get("insights", 0) + value(insights, "property_analytics_insights_emitted_total")
        for hist in ("event_time", "receive"):
            fam = families[f"property_analytics_processing_latency_{hist}_seconds"]
            assert value(fam, f"property_analytics_processing_latency_{hist}_seconds_count") > 0, hist
            assert any(s.name.endswith("_bucket") and s.labels["le"] == "+Inf" for s in fam.samples)
        sizes = families["property_analytics_table_keys"]
        assert {s.labels["store"] for s in sizes.samples} >= {"views", "segment-users", "profiles"}
        assert value(sizes, "property_analytics_table_keys", store="profiles") >= len(exp.profiles) * 0.5
        memory = families["property_analytics_rocksdb_memory_bytes"]
        assert {s.labels["kind"] for s in memory.samples} == {"memtables", "table_readers", "block_cache"}
        assert value(memory, "property_analytics_rocksdb_memory_bytes", kind="memtables") > 0
        parts = families["property_analytics_owned_partitions"]
        assert value(parts, "property_analytics_owned_partitions", store="views") == len(mine)
        assert value(families["property_analytics_table_recovery_complete"], "property_analytics_table_recovery_complete") == 1
        assert value(families["property_analytics_ready"], "property_analytics_ready") == 1

    assert totals["consumed"] == exp.records
    assert totals["accepted"] == exp.stats["accepted"]
    assert totals["duplicate"] == exp.stats["duplicate"]
    assert by_reason == Counter(exp.dlq.values())
    _, body = await cluster.workers[0].get("/api/insights?limit=500")
    assert totals["insights"] == len(body["insights"])


async def test_api_latency_p50_under_small_load(cluster, capsys, record_property):
    """200 hourly requests at 4 at a time to worker A, half of them for keys B owns."""
    a, _ = cluster.workers
    owned_a, owned_b = await cluster.owned()
    local = [f"prop-{i}" for i in range(80) if partition_of(f"prop-{i}", PARTITIONS) in owned_a]
    routed = [f"prop-{i}" for i in range(80) if partition_of(f"prop-{i}", PARTITIONS) in owned_b]
    hour = iso_ms(hour_start(cluster.now_ms))
    paths = []
    for i in range(100):
        paths.append((False, f"/api/properties/{local[i % len(local)]}/views?hour={hour}"))
        paths.append((True, f"/api/properties/{routed[i % len(routed)]}/views?hour={hour}"))
    timings: dict[bool, list[float]] = {False: [], True: []}
    gate = asyncio.Semaphore(4)
    async with aiohttp.ClientSession() as session:
        for _, path in paths[:10]:  # warm up connections on both sides
            async with session.get(a.url + path) as response:
                await response.read()

        async def one(is_routed: bool, path: str) -> None:
            async with gate:
                started = time.perf_counter()
                async with session.get(a.url + path) as response:
                    await response.read()
                    assert response.status == 200
                timings[is_routed].append(time.perf_counter() - started)

        await asyncio.gather(*(one(r, p) for r, p in paths))
    every = timings[False] + timings[True]
    p50 = statistics.median(every) * 1000
    p50_local = statistics.median(timings[False]) * 1000
    p50_routed = statistics.median(timings[True]) * 1000
    p95 = statistics.quantiles(every, n=20)[-1] * 1000
    record_property("api_p50_ms", round(p50, 2))
    with capsys.disabled():
        print(f"\n[test_web_api] GET /api/properties/{{id}}/views, {len(every)} requests, 4 concurrent, "
              f"half routed: p50 {p50:.1f} ms (local {p50_local:.1f} ms, routed {p50_routed:.1f} ms), "
              f"p95 {p95:.1f} ms")
    assert p50 < 250, "the API should answer in well under a quarter second on a quiet cluster"
