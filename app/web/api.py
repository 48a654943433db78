"""JSON endpoints of CONTRACT §6. Any worker answers any key: property keys are forwarded
to the worker owning the key's partition; segment weeks, users and insights are answered
from state every worker holds."""

from __future__ import annotations

from collections.abc import Callable

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.models.insights import PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND
from app.runtime import Runtime
from app.tables.hourly import HourlyPropertyViews
from app.web import routing
from app.web.http import BadRequest, Peers, error, json, param, parse_utc, parse_week_start
from app.windows import HOUR_MS, WEEK_MS, hour_start, iso_ms

MAX_HISTORY_HOURS = 31 * 24
MAX_INSIGHTS = 500
INSIGHT_TYPES = (PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND)
UNAUTHORIZED = "missing or wrong bearer token"


def parse_hour(text: str) -> int:
    return hour_start(parse_utc(text))


def hour_answer(property_id: str, hourly: HourlyPropertyViews, hour: int) -> dict:
    counts = hourly.get(property_id, hour)
    return {
        "propertyId": property_id,
        "windowStart": iso_ms(hour),
        "windowEnd": iso_ms(hour + HOUR_MS),
        "views": counts.views,
        "uniqueUsers": counts.unique_users,
    }


def register(app: faust.App, runtime: Runtime, peers: Peers) -> None:  # noqa: C901
    settings = runtime.settings
    views_topic = settings.views_topic

    async def routed(
        view: View, request: Request, property_id: str, local: Callable[[HourlyPropertyViews], dict]
    ) -> Response:
        """Answer from local state when this worker owns the key, else forward to the owner."""
        partition = routing.partition_of(property_id, settings.topic_partitions)
        processor = runtime.views.owned.processor(partition)
        if processor is not None:
            return json(view, local(HourlyPropertyViews(processor.store.committed())))
        owner = routing.owner_url(app, views_topic, partition)
        if owner is None or routing.is_self(app, owner) or request.headers.get(routing.ROUTED_HEADER):
            return error(view, 503, f"partition {partition} is not ready; retry shortly")
        try:
            status, body = await peers.get(owner, str(request.rel_url), request)
        except routing.OwnerUnreachable as exc:
            return error(view, 503, f"partition {partition}: owner {exc}; retry shortly")
        return view.bytes(body, content_type="application/json", status=status)

    @app.page("/api/properties/{property_id}/views")
    class PropertyHour(View):
        async def get(self, request: Request, property_id: str) -> Response:
            if not peers.authorized(request):
                return error(self, 401, UNAUTHORIZED)
            try:
                hour = param(request, "hour", parse_hour)
            except BadRequest as exc:
                return error(self, 400, str(exc))
            return await routed(self, request, property_id, lambda h: hour_answer(property_id, h, hour))

    @app.page("/api/properties/{property_id}/views/history")
    class PropertyHistory(View):
        async def get(self, request: Request, property_id: str) -> Response:
            if not peers.authorized(request):
                return error(self, 401, UNAUTHORIZED)
            try:
                start = hour_start(param(request, "from", parse_utc))
                end = param(request, "to", parse_utc)
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
            if not peers.authorized(request):
                return error(self, 401, UNAUTHORIZED)
            try:
                week = parse_week_start(week_start)
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
            if not peers.authorized(request):
                return error(self, 401, UNAUTHORIZED)
            raw = runtime.profiles.profile(user_id)
            if raw is None:
                return error(self, 404, f"no profile for user {user_id!r}")
            return self.bytes(raw, content_type="application/json")

    @app.page("/api/insights")
    class InsightsView(View):
        async def get(self, request: Request) -> Response:
            if not peers.authorized(request):
                return error(self, 401, UNAUTHORIZED)
            try:
                limit = param(request, "limit", int, default=50)
            except BadRequest:
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
                generate_latest(runtime.metrics.registry),
                content_type=CONTENT_TYPE_LATEST.split(";")[0],
            )
