"""JSON endpoints of CONTRACT §6. Any worker answers any key: property keys are forwarded
to the worker owning the key's partition; segment weeks, users and insights are answered
from state every worker holds."""

from __future__ import annotations

import hmac
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.models.insights import PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND
from app.runtime import Runtime
from app.tables.hourly import HourlyPropertyViews
from app.web import routing
from app.windows import HOUR_MS, WEEK_MS, hour_start, iso_ms, parse_hour, parse_iso, parse_week

MAX_HISTORY_HOURS = 31 * 24
MAX_INSIGHTS = 500
INSIGHT_TYPES = (PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND)


class BadRequest(Exception):
    pass


def register(app: faust.App, runtime: Runtime) -> None:  # noqa: C901
    settings = runtime.settings
    views_topic = settings.views_topic
    session: dict[str, aiohttp.ClientSession] = {}

    def json(view: View, body: Any, status: int = 200) -> Response:
        return view.bytes(orjson.dumps(body), content_type="application/json", status=status)

    def error(view: View, status: int, message: str) -> Response:
        return json(view, {"error": message}, status)

    def authorized(request: Request) -> bool:
        token = settings.api_token
        if token is None:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode())

    async def routed(view: View, request: Request, property_id: str, local) -> Response:  # noqa: ANN001
        """Answer from local state when this worker owns the key, else forward to the owner."""
        if not authorized(request):
            return error(view, 401, "missing or wrong bearer token")
        try:
            partition = routing.partition_of(property_id, settings.topic_partitions)
            processor = runtime.views.owned.processor(partition)
            if processor is not None:
                return json(view, local(HourlyPropertyViews(processor.store.committed())))
            owner = routing.owner_url(app, views_topic, partition)
            if owner is None or routing.is_self(app, owner) or request.headers.get(routing.ROUTED_HEADER):
                return error(view, 503, f"partition {partition} is not ready; retry shortly")
            if "client" not in session:
                session["client"] = aiohttp.ClientSession()
            headers = {routing.ROUTED_HEADER: str(app.conf.canonical_url)}
            if "Authorization" in request.headers:
                headers["Authorization"] = request.headers["Authorization"]
            status, body = await routing.forward(session["client"], owner, str(request.rel_url), headers)
            return view.bytes(body, content_type="application/json", status=status)
        except BadRequest as exc:
            return error(view, 400, str(exc))

    def hour_answer(property_id: str, hourly: HourlyPropertyViews, hour: int) -> dict:
        counts = hourly.get(property_id, hour)
        return {
            "propertyId": property_id,
            "windowStart": iso_ms(hour),
            "windowEnd": iso_ms(hour + HOUR_MS),
            "views": counts.views,
            "uniqueUsers": counts.unique_users,
        }

    @app.page("/api/properties/{property_id}/views")
    class PropertyHour(View):
        async def get(self, request: Request, property_id: str) -> Response:
            try:
                hour = _param(request, "hour", parse_hour)
            except BadRequest as exc:
                return error(self, 400, str(exc))
            return await routed(self, request, property_id, lambda h: hour_answer(property_id, h, hour))

    @app.page("/api/properties/{property_id}/views/history")
    class PropertyHistory(View):
        async def get(self, request: Request, property_id: str) -> Response:
            try:
                start = hour_start(_param(request, "from", _parse_utc))
                end = _param(request, "to", _parse_utc)
            except BadRequest as exc:
                return error(self, 400, str(exc))
            if end <= start:
                return error(self, 400, "'to' must be after 'from'")
            hours = range(start, end, HOUR_MS)
            if len(hours) > MAX_HISTORY_HOURS:
                return error(self, 400, f"at most {MAX_HISTORY_HOURS} hours per request")

            def local(hourly: HourlyPropertyViews) -> dict:
                return {
                    "propertyId": property_id,
                    "windows": [hour_answer(property_id, hourly, h) for h in hours],
                }

            return await routed(self, request, property_id, local)

    @app.page("/api/segments/{segment}/weeks/{week_start}")
    class SegmentWeekView(View):
        async def get(self, request: Request, segment: str, week_start: str) -> Response:
            if not authorized(request):
                return error(self, 401, "missing or wrong bearer token")
            try:
                week = parse_week(week_start)
            except ValueError as exc:
                return error(self, 400, f"weekStart: {exc}")
            answer = runtime.partials.segment_week(segment, week)
            return json(
                self,
                {
                    "segment": segment,
                    "windowStart": iso_ms(week),
                    "windowEnd": iso_ms(week + WEEK_MS),
                    "views": answer.views,
                    "uniqueUsers": answer.unique_users,
                    "topProperties": [
                        {"propertyId": prop, "views": views} for prop, views in answer.top_properties
                    ],
                },
            )

    @app.page("/api/users/{user_id}")
    class UserView(View):
        async def get(self, request: Request, user_id: str) -> Response:
            if not authorized(request):
                return error(self, 401, "missing or wrong bearer token")
            raw = runtime.profiles.profile(user_id)
            if raw is None:
                return error(self, 404, f"no profile for user {user_id!r}")
            return self.bytes(raw, content_type="application/json")

    @app.page("/api/insights")
    class InsightsView(View):
        async def get(self, request: Request) -> Response:
            if not authorized(request):
                return error(self, 401, "missing or wrong bearer token")
            try:
                limit = int(request.query.get("limit", "50"))
            except ValueError:
                return error(self, 400, "limit must be an integer")
            if not 1 <= limit <= MAX_INSIGHTS:
                return error(self, 400, f"limit must be between 1 and {MAX_INSIGHTS}")
            kind = request.query.get("type") or None
            if kind is not None and kind not in INSIGHT_TYPES:
                return error(self, 400, f"type must be one of {', '.join(INSIGHT_TYPES)}")
            return json(self, {"insights": runtime.insights.latest(limit, kind)})

    @app.page("/health")
    class Health(View):
        async def get(self, request: Request) -> Response:
            return json(self, {"status": "ok"})

    @app.page("/ready")
    class Ready(View):
        async def get(self, request: Request) -> Response:
            body = {
                "ready": runtime.ready,
                "tableRecovery": runtime.recovered,
                "partitions": {
                    stage.owned.name: sorted(stage.owned.partitions) for stage in runtime.stages
                },
            }
            return json(self, body, 200 if runtime.ready else 503)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            return self.bytes(
                generate_latest(runtime.metrics.registry), content_type=CONTENT_TYPE_LATEST.split(";")[0]
            )


def _param(request: Request, name: str, parse) -> int:  # noqa: ANN001
    text = request.query.get(name)
    if not text:
        raise BadRequest(f"query parameter {name!r} is required")
    try:
        return parse(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _parse_utc(text: str) -> int:
    return parse_iso(text if text.endswith(("Z", "z")) or "+" in text[10:] else text + "Z")
