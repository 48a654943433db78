"""What every JSON view shares: JSON and error answers, ids taken from the path as the client
sent them, and one HTTP client session for talking to the other workers."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from yarl import URL

from app.settings import Settings
from app.web import auth, routing
from app.web.params import BadRequest, path_id


def json(view: View, body: Any, status: int = 200) -> Response:
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status)


Handler = Callable[..., Awaitable[Response]]


def bad_request_is_400(get: Handler) -> Handler:
    """A view's ``get`` that answers the BadRequest it raises (a parameter it cannot use) with
    400 and the reason, the one way every JSON view does."""

    @functools.wraps(get)
    async def answer(view: View, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return await get(view, request, *args, **kwargs)
        except BadRequest as exc:
            return error(view, 400, str(exc))

    return answer


def error(view: View, status: int, message: str) -> Response:
    return json(view, {"error": message}, status)


def path_param(request: Request, name: str, label: str) -> str:
    """The id in the path parameter ``name``, decoded from the raw path; BadRequest
    (``<label>: why``) when it breaks the id rules (see ``params.path_id``)."""
    resource = request.match_info.route.resource
    pattern = resource.canonical.split("/") if resource is not None else []
    raw_segments = request.raw_path.split("?", 1)[0].split("/")
    placeholder = "{" + name + "}"
    if placeholder not in pattern or len(raw_segments) != len(pattern):
        raise BadRequest(f"{label}: not in this path")
    try:
        return path_id(raw_segments[pattern.index(placeholder)])
    except BadRequest as exc:
        raise BadRequest(f"{label}: {exc}") from None


class Peers:
    """Requests to the other workers of the group, signed with the peer key.

    Nothing of the client's request is sent on, its Authorization header least of all: the
    target is any URL a member of the group advertises.
    """

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self._app = app
        self._key = settings.peer_key
        self._session: aiohttp.ClientSession | None = None

    def headers_for(self, url: URL, path: str, now_ms: int) -> dict[str, str]:
        headers = {routing.ROUTED_HEADER: str(self._app.conf.canonical_url)}
        if self._key is not None:
            headers.update(auth.peer_headers(self._key, "GET", auth.audience_of(url), path, now_ms))
        return headers

    async def get(
        self, url: URL, path: str, timeout_s: float = routing.FORWARD_TIMEOUT_S
    ) -> routing.Answer:
        """GET ``path`` (built with ``routing.path_qs``) from the worker at ``url``."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        headers = self.headers_for(url, path, int(time.time() * 1000))
        return await routing.forward(self._session, url, path, headers, timeout_s)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
