"""Who may call this worker over HTTP: one middleware in front of every route.

With ``API_TOKEN`` set, every route except the public ones (liveness, readiness, metrics, the
dashboard page and its files) needs either the client's ``Authorization: Bearer <token>`` or a
peer signature. Workers forward requests to the owner of a key at whatever URL the owner
advertises to the consumer group, so the client's token never travels with them: anyone able
to join the group could otherwise collect it. A forwarded request instead carries an HMAC of
(method, target, path and query, time) under the peer key, valid for ``PEER_MAX_AGE_MS``.
Binding the target means a member that receives a signed request cannot replay it to another
worker; the short validity limits replays to the worker it was meant for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

import orjson
from aiohttp import web
from pydantic import SecretStr
from yarl import URL

log = logging.getLogger(__name__)

PUBLIC_ROUTES = frozenset({"/", "/health", "/ready", "/metrics", "/static/{name}"})
TIMESTAMP_HEADER = "X-Peer-Timestamp"
SIGNATURE_HEADER = "X-Peer-Signature"
PEER_MAX_AGE_MS = 30_000
UNAUTHORIZED = "missing or wrong bearer token"


def audience_of(url: str | URL) -> str:
    """What a signature is bound to: the target's host and port, as the group advertises it."""
    parsed = URL(str(url))
    return f"{(parsed.host or '').lower()}:{parsed.port}"


def peer_signature(key: bytes, method: str, audience: str, path_qs: str, ts_ms: int) -> str:
    message = "\n".join((method.upper(), audience, path_qs, str(ts_ms)))
    return hmac.new(key, message.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def peer_headers(key: bytes, method: str, audience: str, path_qs: str, now_ms: int) -> dict[str, str]:
    """The headers that sign a request to ``audience`` for ``path_qs`` (sent exactly as is)."""
    return {
        TIMESTAMP_HEADER: str(now_ms),
        SIGNATURE_HEADER: peer_signature(key, method, audience, path_qs, now_ms),
    }


def peer_problem(
    key: bytes, method: str, audience: str, path_qs: str, headers: Mapping[str, str], now_ms: int
) -> str | None:
    """None when ``headers`` hold a fresh signature of this request to this worker."""
    stamp = headers.get(TIMESTAMP_HEADER)
    signature = headers.get(SIGNATURE_HEADER)
    if stamp is None or signature is None:
        return "missing peer signature"
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 15):
        return "bad peer signature timestamp"
    ts_ms = int(stamp)
    if abs(now_ms - ts_ms) > PEER_MAX_AGE_MS:
        return "peer signature expired (are the workers' clocks in sync?)"
    expected = peer_signature(key, method, audience, path_qs, ts_ms)
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass")):
        return "wrong peer signature"
    return None


def bearer_matches(token: str, header: str | None) -> bool:
    """``header`` is ``Bearer <token>``. Any text is safe here: headers that are not UTF-8
    reach us as surrogate escapes, which are compared as bytes like everything else."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), token.encode("utf-8", "surrogatepass")
    )


class Guard:
    """Decides, from what a request shows, whether it may be answered."""

    def __init__(self, api_token: SecretStr | None, peer_key: bytes | None, own_url: str) -> None:
        self._token = api_token.get_secret_value() if api_token is not None else None
        self._peer_key = peer_key
        self._audience = audience_of(own_url)

    def refusal(
        self, route: str | None, method: str, path_qs: str, headers: Mapping[str, str], now_ms: int
    ) -> str | None:
        """Why the request is refused (401), or None. ``route`` is the pattern of the route
        that would answer (None when no route matches: that needs the token too)."""
        if self._token is None or route in PUBLIC_ROUTES:
            return None
        if bearer_matches(self._token, headers.get("Authorization")):
            return None
        if self._peer_key is not None and SIGNATURE_HEADER in headers:
            return peer_problem(self._peer_key, method, self._audience, path_qs, headers, now_ms)
        return UNAUTHORIZED


def error_response(status: int, message: str) -> web.Response:
    return web.Response(
        body=orjson.dumps({"error": message}), status=status, content_type="application/json"
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def middleware(guard: Guard) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The aiohttp middleware: refuses unauthorized requests with 401 JSON, and answers the
    web framework's own errors (404, 405, ...) and any failure of a view as JSON too."""

    @web.middleware
    async def guard_every_route(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else None
        refusal = guard.refusal(
            route, request.method, request.raw_path, request.headers, int(time.time() * 1000)
        )
        if refusal is not None:
            response = error_response(401, refusal)
            response.headers["WWW-Authenticate"] = "Bearer"
            return response
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = error_response(exc.status, exc.reason)
            if "Allow" in exc.headers:  # 405 says which methods would do
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return error_response(500, "internal error; see the worker's log")

    return guard_every_route
