"""JSON endpoints of CONTRACT §6. Any worker answers any key: property keys are forwarded
to the worker owning the key's partition; segment weeks, users and insights are answered
from state every worker holds. Who may ask is decided once, in ``auth``; what a parameter
may be, in ``params``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import faust
import orjson
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.engine.failures import PartitionUnavailable
from app.engine.store import CommittedState, PartitionStore
from app.positions import Position
from app.properties.history import state_at
from app.readmodels.partials import SegmentWeek
from app.runtime import Runtime
from app.tables.hourly import HourlyPropertyViews
from app.engine.applied import APPLIED_KEY
from app.web import routing, standby_reads
from app.web.consistency import (
    DEFAULT_TIMEOUT_S,
    POSITION_HEADER,
    Deadline,
    ReadOptions,
    codec_of,
    positioned,
    reach,
    read_options,
    too_late,
    wait_moved,
)
from app.web.http import Peers, bad_request_is_400, error, json, path_param
from app.web.params import (
    BadRequest,
    history_hours,
    limit_parser,
    param,
    parse_hour,
    parse_insight_type,
    parse_utc,
    parse_version,
    parse_week_start,
)
from app.tables.properties import PropertyTable
from app.windows import HOUR_MS, WEEK_MS, iso_ms

log = logging.getLogger(__name__)

# A forwarded request names its remaining time unless it is within this of the owner's
# default (a fresh request with no timeout of its own reaches the owner as it came).
TIMEOUT_SLACK_S = 0.1
MAX_INSIGHTS = 500
parse_insights_limit = limit_parser(MAX_INSIGHTS)
MAX_EVENTS_PAGE = 1000
parse_events_limit = limit_parser(MAX_EVENTS_PAGE)


def hour_answer(property_id: str, hourly: HourlyPropertyViews, hour: int) -> dict:
    counts = hourly.get(property_id, hour)
    return {
        "propertyId": property_id,
        "windowStart": iso_ms(hour),
        "windowEnd": iso_ms(hour + HOUR_MS),
        "views": counts.views,
        "uniqueUsers": counts.unique_users,
    }


def register(app: faust.App, runtime: Runtime, peers: Peers) -> None:
    owners = Owners(app, runtime, peers)
    _property_views(app, owners)
    _properties(app, owners)
    _read_models(app, runtime)
    _health(app, runtime)


class Owners:
    """Answers about a property from the worker that owns its partition, at the position the
    request asks for (``app.web.consistency``)."""

    def __init__(self, app: faust.App, runtime: Runtime, peers: Peers) -> None:
        self._app = app
        self._runtime = runtime
        self._peers = peers
        self.codec = codec_of(runtime.settings)

    async def answer(
        self,
        view: View,
        request: Request,
        property_id: str,
        forward: tuple[list[str], dict[str, str] | None],
        local: Callable[[HourlyPropertyViews], dict],
    ) -> Response:
        """Answer from local state when this worker owns the key, else ask the owner."""
        return await self._answer(
            view, request, property_id, forward, self._runtime.views,
            lambda state: (200, local(HourlyPropertyViews(state))),
        )

    async def aggregate(
        self,
        view: View,
        request: Request,
        property_id: str,
        forward: tuple[list[str], dict[str, str] | None],
        local: Callable[[PropertyTable], tuple[int, dict]],
    ) -> Response:
        """The same for the property aggregate (the properties stage's partition, which is
        the views' partition of the same key: the topics are co-partitioned)."""
        return await self._answer(
            view, request, property_id, forward, self._runtime.properties,
            lambda state: local(PropertyTable(state)),
        )

    async def _answer(
        self,
        view: View,
        request: Request,
        property_id: str,
        forward: tuple[list[str], dict[str, str] | None],
        stage,  # noqa: ANN001 - a StageRunner
        local: Callable[[CommittedState | PartitionStore], tuple[int, dict]],
    ) -> Response:
        try:
            options = read_options(request.query, self.codec)
        except BadRequest as exc:
            return error(view, 400, str(exc))
        owned = stage.owned
        partition = routing.partition_of(property_id, self._runtime.settings.topic_partitions)
        deadline = Deadline(options.timeout_s)
        routed = bool(request.headers.get(routing.ROUTED_HEADER))
        problem = f"partition {partition} is not ready; retry shortly"
        last: routing.Answer | None = None
        detail = "none known"  # for the log: the owner's address and what went wrong
        while True:
            before = owned.moved.next()  # taken before looking: no open or close is missed
            owner = routing.owner_url(self._app, owned.source_topic, partition)
            step = routing.next_step(
                owned.processor(partition) is not None,
                owner,
                owner is not None and routing.is_self(self._app, owner),
                routed,
            )
            if step is routing.Step.LOCAL:
                try:
                    return await self._local(view, owned, partition, options, deadline, local)
                except PartitionGone:
                    continue  # revoked while it waited: look again for its new owner
            if step is routing.Step.FORWARD:
                try:
                    answer = await self._forward(owner, forward, options, deadline, options.standby)
                except routing.OwnerUnreachable as exc:
                    problem = f"partition {partition}: its owner {exc.reason}; retry shortly"
                    detail, last = f"{exc.url} {exc.reason}", None
                else:
                    # Its 504 came after the 1 s a standby request gives it: ask again in time.
                    again = options.standby and answer.status == 504 and deadline.remaining > 0
                    if not (routing.worth_retrying(answer) or again):
                        return relayed(view, answer, partition)
                    detail, last = f"{owner} answered {answer.status}", answer
            if options.standby:  # no ready owner here, and the owner (if any) did not answer
                stale = self._from_copy(view, owned, partition, options.bound, local)
                if stale is not None:
                    return stale
                if not routed:
                    elsewhere = await self._ask_copies(
                        owned.source_topic, owner, forward, options, deadline
                    )
                    if elsewhere is not None:
                        return relayed(view, elsewhere, partition)
            if step is routing.Step.REFUSE:
                break
            if not await pause(owned.moved, before, deadline):
                break
        log.warning(
            "%s[%d]: no owner answered within %.1f s (last: %s); answered 503",
            owned.source_topic, partition, options.timeout_s, detail,
        )
        if last is not None:
            return relayed(view, last, partition)
        return error(view, 503, problem)

    async def _forward(
        self,
        owner,  # noqa: ANN001 - a URL
        forward: tuple[list[str], dict[str, str] | None],
        options: ReadOptions,
        deadline: Deadline,
        brief: bool = False,
    ) -> routing.Answer:
        """Ask ``owner``, with what is left of the request's time: the owner waits that long
        for the partition to open (or the bound to be reached) before it says 503 (or 504).
        ``brief`` (a standby request: a copy may answer instead): ``OWNER_WAIT_S`` at most."""
        segments, query = forward
        remaining = deadline.remaining
        grace = routing.FORWARD_TIMEOUT_S
        if brief:
            remaining = min(remaining, standby_reads.OWNER_WAIT_S)
            grace = standby_reads.OWNER_WAIT_S
        query = {**(query or {}), **options.forward_query(self.codec, remaining)}
        if abs(remaining - DEFAULT_TIMEOUT_S) > TIMEOUT_SLACK_S:  # the owner's default else
            query["timeout"] = f"{remaining:.3f}"
        path = routing.path_qs(segments, query)
        return await self._peers.get(owner, path, timeout_s=grace + remaining)

    async def _ask_copies(
        self,
        topic: str,
        owner,  # noqa: ANN001 - a URL or None
        forward: tuple[list[str], dict[str, str] | None],
        options: ReadOptions,
        deadline: Deadline,
    ) -> routing.Answer | None:
        """A standby request no copy here could answer, its owner silent: ask each other
        member, briefly. The assignment does not say who keeps copies, but a member asked by
        a peer answers from its copy (if it has one that can) before it refuses; the first
        answer that is not a 503 is the one."""
        for url in routing.members(self._app, topic):
            if url == owner or routing.is_self(self._app, url) or deadline.remaining <= 0:
                continue
            try:
                answer = await self._forward(url, forward, options, deadline, brief=True)
            except routing.OwnerUnreachable:
                continue
            if not routing.worth_retrying(answer):
                return answer
        return None

    def _copy(self, stage: str, partition: int):  # noqa: ANN202 - (PartitionStore, lag) | None
        return self._runtime.standbys.copy((stage, partition))

    def _from_copy(
        self,
        view: View,
        owned,  # noqa: ANN001 - OwnedPartitions
        partition: int,
        bound: Position | None,
        local: Callable[[CommittedState | PartitionStore], tuple[int, dict]],
    ) -> Response | None:
        """The answer of the standby copy of the partition kept here, marked stale, when it
        can give one (``standby_reads.usable``); None otherwise. No await: the copy cannot
        close between its position and its state."""
        held = self._copy(owned.name, partition)
        if held is None:
            return None
        store, lag = held
        state = store.committed()
        position = standby_reads.copy_position(owned.source_topic, partition, state)
        if not standby_reads.usable(position, lag, bound):
            return None
        status, body = local(state)
        log.debug(
            "%s[%d]@%d answered from the standby copy here, %s records behind",
            owned.source_topic, partition, position.offsets[(owned.source_topic, partition)], lag,
        )
        return positioned(view, standby_reads.marked(body, lag), position, self.codec, status)

    async def _local(
        self,
        view: View,
        owned,  # noqa: ANN001 - OwnedPartitions
        partition: int,
        options: ReadOptions,
        deadline: Deadline,
        local: Callable[[CommittedState | PartitionStore], tuple[int, dict]],
    ) -> Response:
        """Answer from this worker's partition once it reflects the bound asked for."""
        topic = owned.source_topic

        def look() -> Position:
            processor = owned.processor(partition)
            if processor is None:  # closed meanwhile: nothing of it here any more
                raise PartitionGone(partition)
            return stage_position(topic, processor, options.latest)

        position, reached = await reach(look, owned.moved, options.bound, deadline)
        processor = owned.processor(partition)
        if not reached:
            return too_late(view, position, options.bound, self.codec, options.timeout_s)
        # No await from ``look`` to here: the state read is the state the position describes.
        state = processor.store if options.latest else processor.store.committed()
        status, body = local(state)
        if options.standby:
            body = standby_reads.marked(body, None)
        return positioned(view, body, position, self.codec, status)


def relayed(view: View, answer: routing.Answer, partition: int) -> Response:
    """The owner's answer as the client gets it (``routing.relay``)."""
    status, problem = routing.relay(answer, partition)
    if problem is not None:
        return json(view, problem, status)
    headers = {POSITION_HEADER: answer.position} if answer.position else None
    return view.bytes(answer.body, content_type=routing.JSON, status=status, headers=headers)


async def pause(moved, before, deadline: Deadline) -> bool:  # noqa: ANN001
    """Wait for the next open or close here (``before``), at most ``routing.RETRY_PAUSE_S``
    and never past the deadline; False once the deadline has passed."""
    remaining = deadline.remaining
    if remaining <= 0:
        return False
    await wait_moved(moved, before, Deadline(min(remaining, routing.RETRY_PAUSE_S)))
    return deadline.remaining > 0


class PartitionGone(Exception):
    """The partition closed on this worker while a read waited for it."""


def stage_position(topic: str, processor, latest: bool) -> Position:  # noqa: ANN001
    """The input offset a stage partition's state reflects: applied (``latest``), or as
    committed (stored with the committed state, ``app.engine.applied``)."""
    if latest:
        return Position({(topic, processor.partition): processor.applied_offset}, committed=False)
    raw = processor.store.committed().get(APPLIED_KEY)
    return Position({(topic, processor.partition): int(raw) if raw is not None else -1})


def _property_views(app: faust.App, owners: Owners) -> None:
    @app.page("/api/properties/{property_id}/views")
    class PropertyHour(View):
        @bad_request_is_400
        async def get(self, request: Request, property_id: str) -> Response:
            property_id = path_param(request, "property_id", "propertyId")
            hour = param(request.query, "hour", parse_hour)
            path = (["api", "properties", property_id, "views"], {"hour": iso_ms(hour)})
            return await owners.answer(
                self, request, property_id, path, lambda h: hour_answer(property_id, h, hour)
            )

    @app.page("/api/properties/{property_id}/views/history")
    class PropertyHistory(View):
        @bad_request_is_400
        async def get(self, request: Request, property_id: str) -> Response:
            property_id = path_param(request, "property_id", "propertyId")
            start = param(request.query, "from", parse_utc)
            end = param(request.query, "to", parse_utc)
            hours = history_hours(start, end)
            path = (
                ["api", "properties", property_id, "views", "history"],
                {"from": iso_ms(start), "to": iso_ms(end)},
            )

            def local(hourly: HourlyPropertyViews) -> dict:
                return {
                    "propertyId": property_id,
                    "windows": [hour_answer(property_id, hourly, h) for h in hours],
                }

            return await owners.answer(self, request, property_id, path, local)


def property_answer(property_id: str, table: PropertyTable, as_of: int | None) -> tuple[int, dict]:
    """The property now, or as it was at ``as_of`` (its stored events up to then, folded from
    the snapshot before: O(log n) reads, ``app.properties.history``)."""
    state = table.state(property_id)
    if state is not None and as_of is not None and state.updated_at_ms > as_of:
        state = state_at(table, property_id, as_of)
        if state is None:
            return 404, {"error": f"property {property_id!r} did not exist at {iso_ms(as_of)}"}
    if state is None:
        return 404, {"error": f"no property {property_id!r}"}
    body = state.to_wire()
    if as_of is not None:
        body["asOf"] = iso_ms(as_of)
    return 200, body


# At most this much JSON of events per page, a quarter of what a worker relays for a peer
# (routing.MAX_ANSWER_BYTES): a page, forwarded or not, always fits. One event is far smaller
# (the limits on an event's fields and size), and a page holds at least one.
EVENTS_PAGE_BYTES = routing.MAX_ANSWER_BYTES // 4


def events_answer(
    property_id: str,
    table: PropertyTable,
    after_version: int,
    limit: int,
    max_bytes: int = EVENTS_PAGE_BYTES,
) -> tuple[int, dict]:
    """A page of the property's history, oldest first, after ``after_version``: at most
    ``limit`` events and ``max_bytes`` of them as JSON; ``nextAfterVersion`` continues it."""
    state = table.state(property_id)
    if state is None:
        return 404, {"error": f"no property {property_id!r}"}
    page: list[dict] = []
    size = 0
    for stored in table.history(property_id, after_version):
        if len(page) == limit:
            break
        wire = stored.to_wire()
        size += len(orjson.dumps(wire)) + 1
        if page and size > max_bytes:
            break
        page.append(wire)
    more = bool(page) and page[-1]["version"] < state.version
    return 200, {
        "propertyId": property_id,
        "events": page,
        "nextAfterVersion": page[-1]["version"] if more else None,
    }


def _properties(app: faust.App, owners: Owners) -> None:
    @app.page("/api/properties/{property_id}")
    class PropertyView(View):
        @bad_request_is_400
        async def get(self, request: Request, property_id: str) -> Response:
            property_id = path_param(request, "property_id", "propertyId")
            as_of = param(request.query, "asOf", parse_utc, default=None)
            query = {"asOf": iso_ms(as_of)} if as_of is not None else None
            path = (["api", "properties", property_id], query)
            return await owners.aggregate(
                self, request, property_id, path,
                lambda table: property_answer(property_id, table, as_of),
            )

    @app.page("/api/properties/{property_id}/events")
    class PropertyEvents(View):
        @bad_request_is_400
        async def get(self, request: Request, property_id: str) -> Response:
            property_id = path_param(request, "property_id", "propertyId")
            after = param(request.query, "afterVersion", parse_version, default=0)
            limit = param(request.query, "limit", parse_events_limit, default=100)
            path = (
                ["api", "properties", property_id, "events"],
                {"afterVersion": str(after), "limit": str(limit)},
            )
            return await owners.aggregate(
                self, request, property_id, path,
                lambda table: events_answer(property_id, table, after, limit),
            )


def segment_week_answer(segment: str, week: int, answer: SegmentWeek) -> dict:
    return {
        "segment": segment,
        "windowStart": iso_ms(week),
        "windowEnd": iso_ms(week + WEEK_MS),
        "views": answer.views,
        "uniqueUsers": answer.unique_users,
        "topProperties": [
            {"propertyId": prop, "views": views} for prop, views in answer.top_properties
        ],
    }


def _read_models(app: faust.App, runtime: Runtime) -> None:
    """What every worker answers from state it holds whole: segments, profiles, insights."""

    settings = runtime.settings
    codec = codec_of(settings)

    def shares_position() -> Position:
        """What the segment shares held here reflect: per views partition, the offset its
        last publication stood at (-1 for one not heard from)."""
        held = runtime.partials.positions
        topic = settings.views_topic
        return Position({(topic, p): held.get(p, -1) for p in range(settings.topic_partitions)})

    def profiles_position() -> Position:
        """What this worker's profiles replica reflects: the offsets it has read."""
        try:
            read = runtime.profiles.checkpoints()
        except PartitionUnavailable:  # not open yet: nothing read
            read = {}
        topic = settings.profiles_topic
        return Position(
            {(topic, p): read.get(p, 0) - 1 for p in range(settings.profiles_partitions)}
        )

    @app.page("/api/segments/{segment}/weeks/{week_start}")
    class SegmentWeekView(View):
        @bad_request_is_400
        async def get(self, request: Request, segment: str, week_start: str) -> Response:
            segment = path_param(request, "segment", "segment")
            options = read_options(request.query, codec)
            try:
                week = parse_week_start(week_start)
            except BadRequest as exc:
                return error(self, 400, f"weekStart: {exc}")
            position, reached = await reach(
                shares_position, runtime.partials.moved, options.bound,
                Deadline(options.timeout_s),
            )
            if not reached:
                return too_late(self, position, options.bound, codec, options.timeout_s)
            answer = runtime.partials.segment_week(segment, week)
            return positioned(self, segment_week_answer(segment, week, answer), position, codec)

    @app.page("/api/users/{user_id}")
    class UserView(View):
        @bad_request_is_400
        async def get(self, request: Request, user_id: str) -> Response:
            user_id = path_param(request, "user_id", "userId")
            options = read_options(request.query, codec)
            position, reached = await reach(
                profiles_position, runtime.profiles.moved, options.bound,
                Deadline(options.timeout_s),
            )
            if not reached:
                return too_late(self, position, options.bound, codec, options.timeout_s)
            raw = runtime.profiles.profile(user_id)
            if raw is None:
                body = {"error": f"no profile for user {user_id!r}"}
                return positioned(self, body, position, codec, 404)
            return positioned(self, orjson.loads(raw), position, codec)

    @app.page("/api/insights")
    class InsightsView(View):
        @bad_request_is_400
        async def get(self, request: Request) -> Response:
            limit = param(request.query, "limit", parse_insights_limit, default=50)
            kind = param(request.query, "type", parse_insight_type, default=None)
            return json(self, {"insights": runtime.insights.latest(limit, kind)})


def _health(app: faust.App, runtime: Runtime) -> None:
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
                "stalled": None if (stall := runtime.commit_watch.stall()) is None else stall.as_json(),
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
