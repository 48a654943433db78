"""What a dashboard refresh costs does not grow with the data: a worker's share of an hour is
one read per partition however many properties the hour has, kept a second per (hour,
limit) in a bounded cache that a miss never empties; the week's segments come whole, at most
SEGMENTS_SHOWN of them, in the one summary answer. Counted in reads and requests, not time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace

import orjson
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from app.engine.store import PartitionStore, rocksdb_options
from app.main import create_app
from app.readmodels.partials import USERS, VIEWS, PartialsView, partial_key, users_partial, views_partial
from app.settings import Settings
from app.tables.hourly import HourlyPropertyViews
from app.web.dashboard import LOCAL_CACHE_ENTRIES, SEGMENTS_SHOWN, Answers
from app.windows import HOUR_MS, iso_ms, parse_iso, week_start

from ..conftest import SMALL
from ..stores import commit

H = parse_iso("2026-11-20T14:00:00Z")
PARTITIONS = 3
PROPERTIES = 2000  # per partition and hour


class Reads:
    """Every read the dashboard makes of the views stores."""

    def __init__(self) -> None:
        self.gets = 0
        self.scanned = 0


class Counted:
    def __init__(self, state, reads: Reads) -> None:  # noqa: ANN001
        self._state, self._reads = state, reads

    def get(self, key: bytes) -> bytes | None:
        self._reads.gets += 1
        return self._state.get(key)

    def scan(self, start: bytes, end: bytes):  # noqa: ANN201
        for item in self._state.scan(start, end):
            self._reads.scanned += 1
            yield item


class CountedStore:
    def __init__(self, store: PartitionStore, reads: Reads) -> None:
        self._store, self._reads = store, reads

    def committed(self) -> Counted:
        return Counted(self._store.committed(), self._reads)


def views_of(p: int, i: int) -> int:
    return (i * 7919 + p * 13) % 97 + 1


@pytest_asyncio.fixture
async def worker(tmp_path) -> AsyncIterator[tuple[TestClient, Reads, dict]]:
    """A worker whose views stage holds, committed, PROPERTIES properties in each of
    PARTITIONS partitions for hours H and H-1; and 40 segments' shares for H's week."""
    settings = Settings(app_id="web-dash", worker_data_dir=tmp_path / "data",
                        topic_partitions=PARTITIONS)
    app = create_app(settings)
    app.web.init_server()
    reads = Reads()
    expected: dict[int, list[tuple[int, str]]] = {H: [], H - HOUR_MS: []}
    for p in range(PARTITIONS):
        store = PartitionStore(tmp_path / f"views-{p}", rocksdb_options(SMALL, SMALL))
        hourly = HourlyPropertyViews(store)
        for hour in (H, H - HOUR_MS):
            for i in range(PROPERTIES):
                prop = f"p{p}-{i}"
                for v in range(views_of(p, i) if hour == H else 1):
                    hourly.add_view(prop, hour, f"u{v}")
                expected[hour].append((views_of(p, i) if hour == H else 1, prop))
        hourly.flush()
        commit(store, None)
        app.runtime.views.owned._open[p] = SimpleNamespace(store=CountedStore(store, reads))
    week = week_start(H)
    for s in range(40):
        app.runtime.partials.apply(partial_key(VIEWS, 0, week, f"seg-{s:02d}"),
                                   views_partial(s * 3 % 41, [[f"p{s}", s * 3 % 41]]))
        app.runtime.partials.apply(partial_key(USERS, 1, week, f"seg-{s:02d}"), users_partial(s))
    client = TestClient(TestServer(app.web.web_app))
    await client.start_server()
    try:
        yield client, reads, expected
    finally:
        await client.close()


async def get(client: TestClient, path: str) -> dict:
    response = await client.get(URL(path, encoded=True))
    assert response.status == 200, await response.text()
    return orjson.loads(await response.read())


async def test_a_share_is_one_read_per_partition_and_exact(worker):
    client, reads, expected = worker
    share = await get(client, f"/api/dashboard/local?hour={iso_ms(H)}&limit=10")
    best = sorted(expected[H], key=lambda r: (-r[0], r[1]))[:10]
    assert [(r["propertyId"], r["views"]) for r in share["top"]] == [(p, v) for v, p in best]
    assert share["views"] == sum(v for v, _ in expected[H])
    assert share["properties"] == PARTITIONS * PROPERTIES
    # per partition the hour's summary and the committed position (how far it trails the
    # stream): not 6,000 rows
    assert (reads.gets, reads.scanned) == (2 * PARTITIONS, 0)


async def test_alternating_hours_and_limits_each_cost_one_computation(worker):
    client, reads, _ = worker
    asks = [(H, 10), (H - HOUR_MS, 10), (H, 5), (H - HOUR_MS, 50)]
    for _ in range(5):  # within the cache's second: each (hour, limit) computed once
        for hour, limit in asks:
            await get(client, f"/api/dashboard/local?hour={iso_ms(hour)}&limit={limit}")
    assert reads.gets == len(asks) * 2 * PARTITIONS  # summary and position, per partition
    assert reads.scanned == 0


def test_the_cache_is_bounded_and_a_miss_keeps_the_others():
    cache = Answers(ttl_s=1.0, size=3)
    for k in range(3):
        cache.put(k, 0.0, f"a{k}")
    assert cache.get("missing", 0.1) is None
    assert [cache.get(k, 0.2) for k in range(3)] == ["a0", "a1", "a2"]  # nothing emptied
    cache.put(3, 0.3, "a3")  # the least recently asked (0) goes
    assert len(cache) == 3 and cache.get(0, 0.3) is None and cache.get(3, 0.3) == "a3"
    assert cache.get(1, 1.2) is None  # asked at 0.0: a second old
    many = Answers(ttl_s=1.0, size=LOCAL_CACHE_ENTRIES)
    for k in range(10 * LOCAL_CACHE_ENTRIES):
        many.put(k, 0.0, k)
    assert len(many) == LOCAL_CACHE_ENTRIES


async def test_the_summary_carries_the_weeks_top_segments_whole(worker, monkeypatch):
    client, _, _ = worker
    import app.web.dashboard as dashboard

    monkeypatch.setattr(dashboard.time, "time", lambda: (H + 10 * 60_000) / 1000)
    summary = await get(client, "/api/dashboard?limit=10")
    week = summary["week"]
    assert week["segmentCount"] == 40
    assert len(week["segments"]) == SEGMENTS_SHOWN
    views = {f"seg-{s:02d}": s * 3 % 41 for s in range(40)}
    best = sorted(views.items(), key=lambda kv: (-kv[1], kv[0]))[:SEGMENTS_SHOWN]
    assert [(s["segment"], s["views"]) for s in week["segments"]] == best
    for seg in week["segments"]:  # what /api/segments/{segment}/weeks/{week} answers
        answer = await get(client, f"/api/segments/{seg['segment']}/weeks/{week['windowStart']}")
        assert {k: answer[k] for k in seg} == seg


def test_top_segments_of_ten_thousand_and_their_count():
    view = PartialsView()
    week = week_start(H)
    for s in range(10_000):
        view.apply(partial_key(VIEWS, s % 4, week, f"s{s}"), views_partial(s % 500, []))
    view.apply(partial_key(VIEWS, 1, week, "s0"), views_partial(999, []))  # a second share
    view.apply(partial_key(USERS, 0, week, "only-users"), users_partial(3))
    top, count = view.top_segments(week, SEGMENTS_SHOWN)
    assert count == 10_001
    assert [(s, a.views) for s, a in top][:2] == [("s0", 999), ("s1499", 499)]
    assert len(top) == SEGMENTS_SHOWN
    view.apply(partial_key(VIEWS, 1, week, "s0"), None)  # its share removed: views drop back
    top, _ = view.top_segments(week, 1)
    assert top[0][0] == "s1499" and view.segment_week("s0", week).views == 0
    assert "s0" in view.segments(week)  # partition 0's share is still held
    view.apply(partial_key(VIEWS, 0, week, "s0"), None)
    assert "s0" not in view.segments(week) and len(view.segments(week)) == 10_000
