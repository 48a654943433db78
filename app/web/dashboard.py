"""The dashboard: ``GET /`` and its static files, and the JSON summary it reads.

``GET /api/dashboard`` gathers, from every worker of the group, its share of the current
hour (top properties of the partitions it has open), its throughput and its consumer lag,
and merges them. A property lives in exactly one partition, so the global top N is within
the union of the workers' top N. Partitions whose owner did not answer are listed as
``missing``: the page says so rather than showing a partial answer as whole.

Its cost does not grow with the data: a worker's share is one read per partition (the hour's
summary, ``app.tables.hourly``), kept a second per (hour, limit); the week's most viewed
segments come whole with it (``SEGMENTS_SHOWN``, from the shares every worker holds), so the
page makes one request per refresh for them, however many segments there are.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from importlib import resources
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from yarl import URL

from app.metrics import Metrics, RateSampler
from app.runtime import Runtime
from app.properties.aggregate import PropertyState
from app.readmodels.partials import SegmentWeek
from app.engine.applied import APPLIED_KEY
from app.tables.hourly import LEADERS
from app.tables.hourly import top_of_hour as hourly_top
from app.tables.properties import PropertyTable
from app.web import routing
from app.web.http import Peers, bad_request_is_400, error, json
from app.web.params import limit_parser, param, parse_hour
from app.windows import HOUR_MS, WEEK_MS, hour_start, iso_ms, week_start

log = logging.getLogger(__name__)

MAX_TOP = LEADERS  # the most an hour's summary keeps
SEGMENTS_SHOWN = 12  # the week's most viewed segments the summary carries, whole
parse_top_limit = limit_parser(MAX_TOP)
PEER_TIMEOUT_S = 3.0
LOCAL_CACHE_S = 1.0
LOCAL_CACHE_ENTRIES = 64  # (hour, limit) pairs kept: a few hours at every limit
STATIC = {
    "dashboard.css": "text/css",
    "dashboard.js": "application/javascript",
    "favicon.svg": "image/svg+xml",
}


def register(app: faust.App, runtime: Runtime, peers: Peers) -> None:
    _page(app, _load_static())
    _summary(app, runtime, Shares(app, runtime, peers))


def _load_static() -> dict[str, bytes]:
    """The page's files, read once at start. Missing files (a package built without its
    data files) cost the dashboard only, never the worker: ``/`` then answers 503."""
    folder = resources.files("app.web") / "static"
    try:
        return {name: (folder / name).read_bytes() for name in (*STATIC, "index.html")}
    except OSError as exc:
        log.error("dashboard files missing (%s): GET / will answer 503", exc)
        return {}


def _page(app: faust.App, files: dict[str, bytes]) -> None:
    @app.page("/")
    class Dashboard(View):
        async def get(self, request: Request) -> Response:
            if "index.html" not in files:
                return error(self, 503, "the dashboard's files are not installed with this worker")
            return self.bytes(files["index.html"], content_type="text/html")

    @app.page("/static/{name}")
    class Static(View):
        async def get(self, request: Request, name: str) -> Response:
            if name not in STATIC or name not in files:
                return error(self, 404, f"no static file {name!r}")
            response = self.bytes(files[name], content_type=STATIC[name])
            response.headers["Cache-Control"] = "no-cache"
            return response


def _summary(app: faust.App, runtime: Runtime, shares: Shares) -> None:
    settings = runtime.settings

    def query(request: Request) -> tuple[int, int]:
        hour = param(request.query, "hour", parse_hour, default=hour_start(int(time.time() * 1000)))
        limit = param(request.query, "limit", parse_top_limit, default=10)
        return hour, limit

    @app.page("/api/dashboard/local")
    class DashboardLocal(View):
        @bad_request_is_400
        async def get(self, request: Request) -> Response:
            hour, limit = query(request)
            return json(self, shares.local(hour, limit))

    @app.page("/api/dashboard")
    class DashboardSummary(View):
        @bad_request_is_400
        async def get(self, request: Request) -> Response:
            hour, limit = query(request)
            answer = merge(
                await shares.everyone(hour, limit),
                hour,
                limit,
                now_ms=int(time.time() * 1000),
                views_topic=settings.views_topic,
                partitions=settings.topic_partitions,
                segments_of_week=segments_of_week,
            )
            return json(self, answer)

    weeks = Answers(LOCAL_CACHE_S, 4)

    def segments_of_week(week: int) -> tuple[list[dict], int]:
        """The week's most viewed segments, whole (every worker holds the shares of all)."""
        now = time.monotonic()
        hit = weeks.get(week, now)
        if hit is None:
            top, count = runtime.partials.top_segments(week, SEGMENTS_SHOWN)
            hit = ([segment_row(segment, answer) for segment, answer in top], count)
            weeks.put(week, now, hit)
        return hit


def segment_row(segment: str, answer: SegmentWeek) -> dict:
    """One segment's week as ``/api/segments/{segment}/weeks/{weekStart}`` answers it."""
    return {
        "segment": segment,
        "views": answer.views,
        "uniqueUsers": answer.unique_users,
        "topProperties": [{"propertyId": p, "views": v} for p, v in answer.top_properties],
    }


# -- the shares ----------------------------------------------------------------------------


def top_of_hour(stores, hour: int, limit: int) -> tuple[list[dict], int, int]:  # noqa: ANN001
    """The ``limit`` most viewed properties of ``hour`` in ``stores`` (ties: propertyId
    ascending), with the total views and number of properties seen: one read per store (the
    hour's summary, ``app.tables.hourly``), whatever the number of properties."""
    rows: list[tuple[int, str, int]] = []
    total = properties = 0
    for store in stores:
        top = hourly_top(store, hour, limit)
        rows.extend(top.rows)
        total += top.views
        properties += top.properties
    best = heapq.nsmallest(limit, rows, key=lambda r: (-r[0], r[1]))
    top_rows = [{"propertyId": p, "views": v, "uniqueUsers": u} for v, p, u in best]
    return top_rows, total, properties


def committed_offset(state) -> int:  # noqa: ANN001 - a CommittedState
    """The last input offset a partition's committed state reflects (its position)."""
    raw = state.get(APPLIED_KEY)
    return int(raw) if raw is not None else -1


def records_behind(committed: int, highwater: int | None) -> int | None:
    """How many records of its partition a committed answer does not reflect yet: those
    between its position and the partition's end as last fetched (None: not fetched yet)."""
    if highwater is None or highwater < 0:
        return None
    return max(highwater - 1 - committed, 0)


def with_properties(
    rows: list[dict], property_of: Callable[[str], PropertyState | None]
) -> list[dict]:
    """Top rows with their property's ``title`` and ``status`` (committed state), when the
    property has an aggregate."""
    out = []
    for row in rows:
        state = property_of(row["propertyId"])
        if state is not None:
            title = state.data.get("title")
            row = {**row, "title": title if isinstance(title, str) else None, "status": state.status}
        out.append(row)
    return out


def worker_summary(metrics: Metrics, rates: RateSampler, views_topic: str) -> dict:
    """What a worker's counters and rates add to its share."""
    return {
        "eventsPerSecond": rates.rate("consumed"),
        "series": rates.series("consumed"),
        "totals": metrics.snapshot(views_topic),
        "rejectedByReason": metrics.rejected_by_reason(views_topic),
        "lag": metrics.lag(),
    }


def standby_summary(held: set[tuple[str, int]], lag: dict[tuple[str, int], int]) -> dict:
    """The partitions this worker keeps standby copies of (of any stage), and the committed
    records those copies have not applied yet, summed."""
    return {"partitions": sorted({p for _, p in held}), "lag": sum(lag.values())}


class Shares:
    """This worker's share of the summary, and the other workers' ones."""

    def __init__(self, app: faust.App, runtime: Runtime, peers: Peers) -> None:
        self._app = app
        self._runtime = runtime
        self._peers = peers
        self._cache = Answers(LOCAL_CACHE_S, LOCAL_CACHE_ENTRIES)
        self._gathered = Answers(LOCAL_CACHE_S, LOCAL_CACHE_ENTRIES)
        self._gathering: dict[tuple[int, int], asyncio.Future] = {}

    def local(self, hour: int, limit: int) -> dict:
        """This worker's share, from committed state only; kept for ``LOCAL_CACHE_S``."""
        now = time.monotonic()
        hit = self._cache.get((hour, limit), now)
        if hit is not None:
            return hit
        runtime = self._runtime
        owned = runtime.views.owned
        partitions = sorted(owned.partitions)
        stores = [owned.processor(p).store.committed() for p in partitions]
        top, total, properties = top_of_hour(stores, hour, limit)
        top = with_properties(top, self._property_of)
        behind = {
            p: records_behind(committed_offset(stores[i]), runtime.views.highwater(p))
            for i, p in enumerate(partitions)
        }
        # the week's segments are the shares every worker holds: how far they trail the
        # partitions this worker reads
        shares_behind = {
            p: records_behind(runtime.partials.positions.get(p, -1), runtime.views.highwater(p))
            for p in partitions
        }
        partition_count = runtime.settings.topic_partitions
        top = [
            {**row, "behind": behind.get(routing.partition_of(row["propertyId"], partition_count))}
            for row in top
        ]
        share = {
            "url": str(self._app.conf.canonical_url),
            "ready": runtime.ready,
            "partitions": partitions,
            "top": top,
            "views": total,
            "properties": properties,
            "behind": [
                {"partition": p, "records": n} for p, n in sorted(behind.items()) if n is not None
            ],
            "weekBehind": [
                {"partition": p, "records": n}
                for p, n in sorted(shares_behind.items()) if n is not None
            ],
            **worker_summary(runtime.metrics, runtime.rates, runtime.settings.views_topic),
            "standbys": standby_summary(runtime.standbys.held, runtime.standbys.lag),
        }
        self._cache.put((hour, limit), now, share)
        return share

    def _property_of(self, property_id: str) -> PropertyState | None:
        """The property's committed aggregate, from this worker's properties stage (the owner
        of a property's views partition owns its property-events partition too)."""
        runtime = self._runtime
        partition = routing.partition_of(property_id, runtime.settings.topic_partitions)
        processor = runtime.properties.owned.processor(partition)
        if processor is None:
            return None
        return PropertyTable(processor.store.committed()).state(property_id)

    async def everyone(self, hour: int, limit: int) -> list[dict]:
        """This worker's share first, then every other member's (or why it has none); kept
        for ``LOCAL_CACHE_S`` per (hour, limit), and asked once however many requests wait
        for it: the peers are asked at most once a second per (hour, limit), whatever the
        number of dashboards open."""
        key = (hour, limit)
        hit = self._gathered.get(key, time.monotonic())
        if hit is not None:
            return hit
        pending = self._gathering.get(key)
        if pending is None:
            pending = self._gathering[key] = asyncio.ensure_future(self._gather(hour, limit))
            pending.add_done_callback(lambda _: self._gathering.pop(key, None))
        gathered = await asyncio.shield(pending)
        self._gathered.put(key, time.monotonic(), gathered)
        return gathered

    async def _gather(self, hour: int, limit: int) -> list[dict]:
        app = self._app
        topic = self._runtime.settings.views_topic
        mine = self.local(hour, limit)
        others = [url for url in routing.members(app, topic) if not routing.is_self(app, url)]
        theirs = await asyncio.gather(*(self.peer(url, hour, limit) for url in others))
        return [mine, *theirs]

    async def peer(self, url: URL, hour: int, limit: int) -> dict:
        """The share of the worker at ``url``, checked; ``{"url", "error", "partitions": []}``
        when it did not answer one."""
        path = routing.path_qs(
            ["api", "dashboard", "local"], {"hour": iso_ms(hour), "limit": str(limit)}
        )
        try:
            answer = await self._peers.get(url, path, timeout_s=PEER_TIMEOUT_S)
        except routing.OwnerUnreachable as exc:
            return _failed(url, exc.reason)
        if answer.status != 200:
            return _failed(url, f"answered {answer.status}")
        try:
            share = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return _failed(url, "answered something that is not JSON")
        problem = share_problem(share)
        if problem is not None:
            log.warning("dashboard share of %s left out: %s", url, problem)
            return _failed(url, f"answered {problem}")
        # The worker is the one asked, whatever URL its share names.
        return {**share, "url": str(url)}


class Answers:
    """Answers kept ``ttl_s`` seconds each, at most ``size`` of them (the least recently
    asked goes first): a miss adds one answer, it never empties the others."""

    def __init__(self, ttl_s: float, size: int) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable, now: float) -> Any | None:  # noqa: ANN401 - any answer
        hit = self._items.get(key)
        if hit is None:
            return None
        if now - hit[0] >= self._ttl_s:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, now: float, answer: Any) -> None:  # noqa: ANN401
        self._items[key] = (now, answer)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)


def _failed(url: URL, why: str) -> dict:
    return {"url": str(url), "error": why, "partitions": []}


# -- checking a peer's share ---------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _list_of(value: object, check) -> bool:  # noqa: ANN001
    return isinstance(value, list) and all(check(item) for item in value)


def _top_row(row: object) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("propertyId"), str)
        and _is_number(row.get("views"))
        and _is_number(row.get("uniqueUsers"))
        and all(row.get(name) is None or isinstance(row[name], str) for name in ("title", "status"))
        and (row.get("behind") is None or _is_number(row["behind"]))
    )


def _behind_item(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("partition"), int)
        and _is_number(item.get("records"))
    )


def _standbys(value: object) -> bool:
    return (
        isinstance(value, dict)
        and _list_of(value.get("partitions"), lambda p: isinstance(p, int) and not isinstance(p, bool))
        and _is_number(value.get("lag"))
    )


def _lag_item(item: object) -> bool:
    return (
        isinstance(item, dict)
        and isinstance(item.get("topic"), str)
        and isinstance(item.get("partition"), int)
        and _is_number(item.get("lag"))
    )


def _counts(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and _is_number(v) for k, v in value.items()
    )


def share_problem(share: object) -> str | None:
    """Why a peer's ``/api/dashboard/local`` answer (parsed JSON) cannot be merged, or None.

    The answer comes from whatever URL a member of the group advertises: ``merge`` must
    only ever see the shape ``Shares.local`` writes.
    """
    checks = {
        "url": lambda v: isinstance(v, str),
        "ready": lambda v: isinstance(v, bool),
        "partitions": lambda v: _list_of(v, lambda p: isinstance(p, int) and not isinstance(p, bool)),
        "top": lambda v: _list_of(v, _top_row),
        "views": _is_number,
        "properties": _is_number,
        "eventsPerSecond": lambda v: v is None or _is_number(v),
        "series": lambda v: _list_of(v, _is_number),
        "totals": _counts,
        "rejectedByReason": _counts,
        "lag": lambda v: _list_of(v, _lag_item),
    }
    if not isinstance(share, dict):
        return "JSON that is not an object"
    wrong = [name for name, check in checks.items() if name not in share or not check(share[name])]
    for name in ("behind", "weekBehind"):  # absent: an older peer
        if name in share and not _list_of(share[name], _behind_item):
            wrong.append(name)
    if "standbys" in share and not _standbys(share["standbys"]):  # absent: an older peer
        wrong.append("standbys")
    return f"a share with missing or wrong {', '.join(wrong)}" if wrong else None


# -- merging -------------------------------------------------------------------------------


def merge(
    shares: list[dict],
    hour: int,
    limit: int,
    *,
    now_ms: int,
    views_topic: str,
    partitions: int,
    segments_of_week: Callable[[int], tuple[list[dict], int]],
) -> dict:
    """The summary from every worker's share (a failed one: ``url``, ``error``, no partitions).
    ``segments_of_week``: the week's most viewed segments (whole answers) and their number."""
    week = week_start(now_ms)
    segments, segment_count = segments_of_week(week)
    covered = sorted({p for share in shares for p in share.get("partitions", [])})
    answered = [s for s in shares if "error" not in s]
    rates = [s["eventsPerSecond"] for s in answered if s.get("eventsPerSecond") is not None]
    lag = sorted(
        (item for s in answered for item in s.get("lag", []) if item["topic"] == views_topic),
        key=lambda item: item["partition"],
    )
    behind = _behind(answered, "behind")
    return {
        "generatedAt": iso_ms(now_ms - now_ms % 1000),
        "hour": {"windowStart": iso_ms(hour), "windowEnd": iso_ms(hour + HOUR_MS)},
        "week": {
            "windowStart": iso_ms(week),
            "windowEnd": iso_ms(week + WEEK_MS),
            "segments": segments,
            "segmentCount": segment_count,
            # records of the views partitions the segment shares do not reflect yet
            "behind": sum(item["records"] for item in _behind(answered, "weekBehind")),
        },
        "topProperties": merged_top(shares, limit),
        "hourViews": sum(s.get("views", 0) for s in answered),
        "hourProperties": sum(s.get("properties", 0) for s in answered),
        "partitions": {
            "total": partitions,
            "covered": covered,
            "missing": [p for p in range(partitions) if p not in covered],
        },
        "throughput": {
            "eventsPerSecond": sum(rates) if rates else None,
            "series": merged_series(s.get("series", []) for s in answered),
        },
        "totals": summed(s.get("totals", {}) for s in answered),
        "rejectedByReason": summed(s.get("rejectedByReason", {}) for s in answered),
        "lag": {"total": sum(item["lag"] for item in lag), "partitions": lag},
        # How far the numbers above trail the stream: per partition, the records not in its
        # committed answers yet (each top property carries its partition's as "behind").
        "behind": {"total": sum(item["records"] for item in behind), "partitions": behind},
        "workers": [
            {
                "url": s["url"],
                "ready": s.get("ready", False),
                "partitions": s.get("partitions", []),
                "eventsPerSecond": s.get("eventsPerSecond"),
                "standbys": s.get("standbys", {"partitions": [], "lag": 0}),
                **({"error": s["error"]} if "error" in s else {}),
            }
            for s in shares
        ],
    }


def _behind(shares: list[dict], name: str) -> list[dict]:
    """Per partition, the records behind its workers report (mid-rebalance two workers may
    report one: the lesser)."""
    behind_of: dict[int, int] = {}
    for item in (item for s in shares for item in s.get(name, [])):
        p = item["partition"]
        behind_of[p] = min(behind_of.get(p, item["records"]), item["records"])
    return [{"partition": p, "records": n} for p, n in sorted(behind_of.items())]


def merged_top(shares: list[dict], limit: int) -> list[dict]:
    """The ``limit`` most viewed properties over every share (ties: propertyId ascending).
    During a rebalance two workers may both report a partition: a property counts once, with
    the higher count."""
    best: dict[str, dict] = {}
    for row in (row for share in shares for row in share.get("top", [])):
        if row["views"] > best.get(row["propertyId"], {"views": -1})["views"]:
            best[row["propertyId"]] = row
    return sorted(best.values(), key=lambda r: (-r["views"], r["propertyId"]))[:limit]


def merged_series(series: Iterable[list[float]]) -> list[float]:
    """Per-second rates added up, aligned on their newest value (a worker that started later
    has a shorter series)."""
    all_series = list(series)
    length = max((len(values) for values in all_series), default=0)
    out = [0.0] * length
    for values in all_series:
        for i, value in enumerate(values):
            out[length - len(values) + i] += value
    return out


def summed(counts: Iterable[dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for items in counts:
        for key, value in items.items():
            out[key] = out.get(key, 0) + value
    return out
