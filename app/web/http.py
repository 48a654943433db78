"""What every JSON view shares: JSON and error answers, the bearer token, query parameters,
and one HTTP client session for talking to the other workers."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any

import aiohttp
import faust
import orjson
from faust.web import Request, Response, View
from yarl import URL

from app.settings import Settings
from app.web import routing
from app.windows import parse_iso, parse_week


_SPACE_OFFSET = re.compile(r"(?<=\d) (\d\d(?::?\d\d)?)$")


class BadRequest(Exception):
    """A query parameter is missing or wrong: answered 400 with its message."""


def json(view: View, body: Any, status: int = 200) -> Response:
    return view.bytes(orjson.dumps(body), content_type="application/json", status=status)


def error(view: View, status: int, message: str) -> Response:
    return json(view, {"error": message}, status)


def param(request: Request, name: str, parse: Callable[[str], Any], default: Any = None) -> Any:
    """A parsed query parameter; BadRequest when it is missing (and has no default) or wrong."""
    text = request.query.get(name)
    if text is None or text == "":
        if default is not None:
            return default
        raise BadRequest(f"query parameter {name!r} is required")
    try:
        return parse(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def parse_utc(text: str) -> int:
    """An ISO-8601 instant; no offset means UTC. A '+' sent unescaped arrives as a space."""
    given = text
    text = _SPACE_OFFSET.sub(r"+\1", text.strip())
    tail = text[10:]
    if not (text.endswith(("Z", "z")) or "+" in tail or "-" in tail):
        text += "Z"
    try:
        return parse_iso(text)
    except ValueError:
        raise ValueError(f"{given!r} is not an ISO-8601 time such as 2026-11-20T14:00:00Z") from None


def parse_week_start(text: str) -> int:
    """A week's Monday as ``2026-11-23`` or ``2026-11-23T00:00:00Z``."""
    try:
        return parse_week(text)
    except ValueError as exc:
        if "Monday" in str(exc):
            raise
        raise ValueError(
            f"{text!r} is not a date such as 2026-11-23 or 2026-11-23T00:00:00Z"
        ) from None


class Peers:
    """Authorization and forwarding between the workers of one group."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self._app = app
        self._settings = settings
        self._session: aiohttp.ClientSession | None = None

    def authorized(self, request: Request) -> bool:
        token = self._settings.api_token
        if token is None:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode())

    def headers_for(self, request: Request) -> dict[str, str]:
        """Headers of a request forwarded to a peer: the caller's token and our mark."""
        headers = {routing.ROUTED_HEADER: str(self._app.conf.canonical_url)}
        if "Authorization" in request.headers:
            headers["Authorization"] = request.headers["Authorization"]
        return headers

    async def get(
        self, url: URL, path_qs: str, request: Request, timeout_s: float = routing.FORWARD_TIMEOUT_S
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return await routing.forward(
            self._session, url, path_qs, self.headers_for(request), timeout_s
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
