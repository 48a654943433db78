"""How fresh an answer must be: ``consistency``, ``atLeast`` and ``timeout``, and the position
an answer reports (its body's ``position`` and the ``X-Position`` header).

``consistency=committed`` (the default) answers from committed state; ``latest`` from the
state the owner has applied, ahead of its commit; ``standby`` as committed, or from a standby
copy of the partition when its owner cannot answer (``app.web.standby_reads``). ``atLeast`` (a position token or
``topic:partition:offset``) makes the owner answer only once the state it reads reflects at
least that, waiting up to ``timeout`` seconds (default 5, at most 30); past it the answer is
504 with the position reached. Parsing is pure and raises nothing but BadRequest.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import orjson
from faust.web import Response, View

from app.engine.moved import Moved
from app.positions import BadPosition, Position, PositionCodec
from app.settings import Settings
from app.web import routing
from app.web.params import BadRequest, param

POSITION_HEADER = routing.POSITION_HEADER
COMMITTED = "committed"
LATEST = "latest"
STANDBY = "standby"
CONSISTENCIES = (COMMITTED, LATEST, STANDBY)
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 30.0
_SECONDS = re.compile(r"[0-9]{1,6}(\.[0-9]{1,6})?")


def codec_of(settings: Settings) -> PositionCodec:
    """The app's tokens: its id and every source topic an answer can reflect."""
    return PositionCodec(
        settings.app_id,
        {
            settings.views_topic: settings.topic_partitions,
            settings.property_events_topic: settings.topic_partitions,
            settings.profiles_topic: settings.profiles_partitions,
        },
    )


def parse_consistency(text: str) -> str:
    """One of ``CONSISTENCIES``."""
    if text not in CONSISTENCIES:
        raise BadRequest(f"must be {COMMITTED}, {LATEST} or {STANDBY}")
    return text


def parse_timeout(text: str) -> float:
    """Seconds to wait for ``atLeast``: a decimal number from 0 to 30."""
    seconds = text.strip()  # what is checked is what is converted: float() strips less
    if not _SECONDS.fullmatch(seconds):
        raise BadRequest(f"must be a number of seconds from 0 to {MAX_TIMEOUT_S:g}")
    value = float(seconds)
    if value > MAX_TIMEOUT_S:
        raise BadRequest(f"must be at most {MAX_TIMEOUT_S:g} seconds")
    return value


@dataclass(frozen=True, slots=True)
class ReadOptions:
    latest: bool = False
    bound: Position | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    standby: bool = False  # a standby copy may answer when the owner cannot

    def forward_query(self, codec: PositionCodec, remaining_s: float) -> dict[str, str]:
        """The same options for the owner, the time already spent taken off the timeout."""
        query = {"consistency": LATEST} if self.latest else {}
        if self.standby:
            query = {"consistency": STANDBY}
        if self.bound is not None:
            query["atLeast"] = codec.token(self.bound)
            query["timeout"] = f"{max(remaining_s, 0.0):.3f}"
        return query


def read_options(query: Mapping[str, str], codec: PositionCodec) -> ReadOptions:
    """The options of a request; BadRequest for any bad one."""
    consistency = param(query, "consistency", parse_consistency, default=COMMITTED)

    def parse_bound(text: str) -> Position:
        try:
            return codec.bound(text)
        except BadPosition as exc:
            raise BadRequest(str(exc)) from None

    bound = param(query, "atLeast", parse_bound, default=None)
    timeout = param(query, "timeout", parse_timeout, default=DEFAULT_TIMEOUT_S)
    return ReadOptions(consistency == LATEST, bound, timeout, consistency == STANDBY)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self._at = time.monotonic() + seconds

    @property
    def remaining(self) -> float:
        return max(self._at - time.monotonic(), 0.0)


async def wait_moved(moved: Moved, before: asyncio.Future[None], deadline: Deadline) -> bool:
    """Wait for ``before`` (a ``moved.next()`` taken before looking), up to the deadline;
    False when the time is up. The shared future is never cancelled."""
    remaining = deadline.remaining
    if remaining <= 0:
        return False
    done, _ = await asyncio.wait({before}, timeout=remaining)
    return bool(done)


async def reach(
    look: Callable[[], Position],
    moved: Moved,
    bound: Position | None,
    deadline: Deadline,
) -> tuple[Position, bool]:
    """The position ``look`` gives once it covers ``bound`` (True), or the one reached when
    the deadline passed (False). ``look`` is read again at every move, never polled."""
    while True:
        before = moved.next()
        position = look()
        if bound is None or not position.behind(bound):
            return position, True
        if not await wait_moved(moved, before, deadline):
            return look(), False


def with_position(body: object, position: Position, codec: PositionCodec) -> tuple[bytes, str]:
    """The JSON body with its ``position``, and the token for the header."""
    token = codec.token(position)
    if isinstance(body, dict):
        body = {**body, "position": position.as_json(token)}
    return orjson.dumps(body), token


def positioned(
    view: View, body: object, position: Position, codec: PositionCodec, status: int = 200
) -> Response:
    raw, token = with_position(body, position, codec)
    return view.bytes(
        raw, content_type="application/json", status=status, headers={POSITION_HEADER: token}
    )


def too_late(
    view: View, reached: Position, bound: Position, codec: PositionCodec, waited_s: float
) -> Response:
    """504: the state did not reach ``bound`` in time; the body says how far it got."""
    missing = reached.behind(bound)
    what = ", ".join(f"{t}[{p}]@{o}" for (t, p), o in sorted(missing.items()))
    body = {"error": f"not reached within {waited_s:g} s: {what}"}
    return positioned(view, body, reached, codec, status=504)
