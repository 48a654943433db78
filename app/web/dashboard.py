"""The dashboard: ``GET /`` and its static files, and the JSON summary it reads.

``GET /api/dashboard`` gathers, from every worker of the group, its share of the current
hour (top properties of the partitions it has open), its throughput and its consumer lag,
and merges them. A property lives in exactly one partition, so the global top N is within
the union of the workers' top N. Partitions whose owner did not answer are listed as
``missing``: the page says so rather than showing a partial answer as whole.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from importlib import resources

import faust
import orjson
from faust.web import Request, Response, View
from yarl import URL

from app.runtime import Runtime
from app.tables.hourly import COUNTS, HourlyCounts
from app.tables.keys import split_key, window_prefix
from app.web import routing
from app.web.http import Peers, error, json
from app.web.monitoring import Monitoring
from app.web.params import BadRequest, limit_parser, param, parse_hour
from app.windows import HOUR_MS, WEEK_MS, hour_start, iso_ms, week_start

log = logging.getLogger(__name__)

MAX_TOP = 50
parse_top_limit = limit_parser(MAX_TOP)
PEER_TIMEOUT_S = 3.0
LOCAL_CACHE_S = 1.0
STATIC = {
    "dashboard.css": "text/css",
    "dashboard.js": "application/javascript",
    "favicon.svg": "image/svg+xml",
}


def _load_static() -> dict[str, bytes]:
    """The page's files, read once at start. Missing files (a package built without its
    data files) cost the dashboard only, never the worker: ``/`` then answers 503."""
    folder = resources.files("app.web") / "static"
    try:
        return {name: (folder / name).read_bytes() for name in (*STATIC, "index.html")}
    except OSError as exc:
        log.error("dashboard files missing (%s): GET / will answer 503", exc)
        return {}


def top_of_hour(stores, hour: int, limit: int) -> tuple[list[dict], int, int]:  # noqa: ANN001
    """The ``limit`` most viewed properties of ``hour`` in ``stores`` (ties: propertyId
    ascending), with the total views and number of properties seen."""
    start, end = window_prefix(COUNTS, hour)
    rows: list[tuple[int, str, int]] = []
    total = 0
    for store in stores:
        for key, value in store.scan(start, end):
            counts = HourlyCounts.from_bytes(value)
            rows.append((counts.views, split_key(key).parts[0], counts.unique_users))
            total += counts.views
    best = heapq.nsmallest(limit, rows, key=lambda r: (-r[0], r[1]))
    top = [{"propertyId": p, "views": v, "uniqueUsers": u} for v, p, u in best]
    return top, total, len(rows)


def register(app: faust.App, runtime: Runtime, peers: Peers, monitoring: Monitoring) -> None:
    settings = runtime.settings
    views_topic = settings.views_topic
    files = _load_static()
    cache: dict[tuple[int, int], tuple[float, dict]] = {}

    def local_share(hour: int, limit: int) -> dict:
        """This worker's part of the summary, from committed state only."""
        now = time.monotonic()
        hit = cache.get((hour, limit))
        if hit is not None and now - hit[0] < LOCAL_CACHE_S:
            return hit[1]
        owned = runtime.views.owned
        partitions = sorted(owned.partitions)
        stores = [owned.processor(p).store.committed() for p in partitions]
        top, total, properties = top_of_hour(stores, hour, limit)
        share = {
            "url": str(app.conf.canonical_url),
            "ready": runtime.ready,
            "partitions": partitions,
            "top": top,
            "views": total,
            "properties": properties,
            **monitoring.summary(),
        }
        cache.clear()
        cache[(hour, limit)] = (now, share)
        return share

    def query(request: Request) -> tuple[int, int]:
        hour = param(request.query, "hour", parse_hour, default=hour_start(int(time.time() * 1000)))
        limit = param(request.query, "limit", parse_top_limit, default=10)
        return hour, limit

    async def peer_share(url: URL, hour: int, limit: int) -> dict:
        path = routing.path_qs(
            ["api", "dashboard", "local"], {"hour": iso_ms(hour), "limit": str(limit)}
        )
        try:
            answer = await peers.get(url, path, timeout_s=PEER_TIMEOUT_S)
        except routing.OwnerUnreachable as exc:
            return {"url": str(url), "error": str(exc), "partitions": []}
        if answer.status != 200:
            return {"url": str(url), "error": f"answered {answer.status}", "partitions": []}
        try:
            share = orjson.loads(answer.body)
        except orjson.JSONDecodeError:
            return {"url": str(url), "error": "answered something that is not JSON", "partitions": []}
        problem = share_problem(share)
        if problem is not None:
            return {"url": str(url), "error": f"answered {problem}", "partitions": []}
        return share

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

    @app.page("/api/dashboard/local")
    class DashboardLocal(View):
        async def get(self, request: Request) -> Response:
            try:
                hour, limit = query(request)
            except BadRequest as exc:
                return error(self, 400, str(exc))
            return json(self, local_share(hour, limit))

    @app.page("/api/dashboard")
    class DashboardSummary(View):
        async def get(self, request: Request) -> Response:
            try:
                hour, limit = query(request)
            except BadRequest as exc:
                return error(self, 400, str(exc))
            shares = [local_share(hour, limit)]
            others = [url for url in routing.members(app, views_topic) if not routing.is_self(app, url)]
            shares += await asyncio.gather(*(peer_share(u, hour, limit) for u in others))
            return json(self, merge(shares, hour, limit, runtime))


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
    only ever see the shape ``local_share`` writes.
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
    return f"a share with missing or wrong {', '.join(wrong)}" if wrong else None


def merge(shares: list[dict], hour: int, limit: int, runtime: Runtime) -> dict:
    settings = runtime.settings
    now_ms = int(time.time() * 1000)
    week = week_start(now_ms)
    covered = sorted({p for share in shares for p in share.get("partitions", [])})
    best: dict[str, dict] = {}  # during a rebalance two workers may both report a partition
    for row in (row for share in shares for row in share.get("top", [])):
        if row["views"] > best.get(row["propertyId"], {"views": -1})["views"]:
            best[row["propertyId"]] = row
    top = sorted(best.values(), key=lambda r: (-r["views"], r["propertyId"]))[:limit]
    answered = [s for s in shares if "error" not in s]
    series_len = max((len(s.get("series", [])) for s in answered), default=0)
    series = [0.0] * series_len
    for share in answered:
        values = share.get("series", [])
        for i, value in enumerate(values):
            series[series_len - len(values) + i] += value
    rates = [s["eventsPerSecond"] for s in answered if s.get("eventsPerSecond") is not None]
    totals: dict[str, float] = {}
    rejected: dict[str, float] = {}
    for share in answered:
        for key, value in share.get("totals", {}).items():
            totals[key] = totals.get(key, 0) + value
        for reason, value in share.get("rejectedByReason", {}).items():
            rejected[reason] = rejected.get(reason, 0) + value
    lag = sorted(
        (item for s in answered for item in s.get("lag", []) if item["topic"] == settings.views_topic),
        key=lambda item: item["partition"],
    )
    return {
        "generatedAt": iso_ms(now_ms - now_ms % 1000),
        "hour": {"windowStart": iso_ms(hour), "windowEnd": iso_ms(hour + HOUR_MS)},
        "week": {
            "windowStart": iso_ms(week),
            "windowEnd": iso_ms(week + WEEK_MS),
            "segments": runtime.partials.segments(week),
        },
        "topProperties": top,
        "hourViews": sum(s.get("views", 0) for s in answered),
        "hourProperties": sum(s.get("properties", 0) for s in answered),
        "partitions": {
            "total": settings.topic_partitions,
            "covered": covered,
            "missing": [p for p in range(settings.topic_partitions) if p not in covered],
        },
        "throughput": {
            "eventsPerSecond": sum(rates) if rates else None,
            "series": series,
        },
        "totals": totals,
        "rejectedByReason": rejected,
        "lag": {"total": sum(item["lag"] for item in lag), "partitions": lag},
        "workers": [
            {
                "url": s["url"],
                "ready": s.get("ready", False),
                "partitions": s.get("partitions", []),
                "eventsPerSecond": s.get("eventsPerSecond"),
                **({"error": s["error"]} if "error" in s else {}),
            }
            for s in shares
        ],
    }
