"""Which worker owns a key, and forwarding a request to it.

Ownership comes from faust's assignor, which shares every worker's URL and partitions with
the group; the key's partition is the Java client's default (murmur2) partitioner, the
same one the producers of ``property.views`` use.

A forwarded request is built again from the values this worker has already validated, every
path segment percent-encoded, so any id (``a/b``, ``50%``, ``..``, ``日本``) reaches the owner
as the same id, and nothing of the client's request but those values travels on.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
import faust
from yarl import URL

from app.engine.partitioner import key_partition

log = logging.getLogger(__name__)

ROUTED_HEADER = "X-Routed-By"
POSITION_HEADER = "X-Position"  # the answer's position token (app.web.consistency)
FORWARD_TIMEOUT_S = 10.0
# While a key's partition has no ready owner (opening, moving, its owner gone), a request
# looks again at every open or close here, and at least this often (an assignment that
# changes elsewhere signals nothing here).
RETRY_PAUSE_S = 0.2
MAX_ANSWER_BYTES = 4 * 1024 * 1024  # a month of hours is ~110 KB; a peer may not flood us
JSON = "application/json"


class OwnerUnreachable(Exception):
    """The owner of a key did not answer (down, restarting, or too slow).

    ``reason`` says what went wrong without the owner's address, for answers to clients (the
    addresses of the group's members are internal); ``str()`` names the address, for logs.
    """

    def __init__(self, url: URL, reason: str) -> None:
        super().__init__(f"{url} {reason}")
        self.url = url
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    position: str | None = None  # the owner's X-Position header


_unusable_logged: set[str] = set()


def peer_url(raw: object) -> URL | None:
    """A member's advertised URL when it is an absolute http(s) URL with a host and a valid
    port; None (logged once per address) for anything else, which no request can reach."""
    try:
        url = URL(raw) if isinstance(raw, str) else None
        usable = url is not None and url.scheme in ("http", "https") and bool(url.host)
        usable = usable and url.port is not None
    except (ValueError, TypeError):
        usable = False
    if usable:
        return url
    text = repr(raw)[:200]
    if text not in _unusable_logged:
        if len(_unusable_logged) >= 1000:
            _unusable_logged.clear()
        _unusable_logged.add(text)
        log.warning("a member of the group advertises an unusable URL %s: left out", text)
    return None


def owner_url(app: faust.App, topic: str, partition: int) -> URL | None:
    for raw, topics in app.assignor.external_topics_metadata().items():
        if partition in topics.get(topic, ()):
            return peer_url(raw)
    return None


def members(app: faust.App, topic: str) -> dict[URL, list[int]]:
    """Every worker of the group (this one included) and its assigned partitions of ``topic``;
    a member whose URL is unusable is left out (its partitions then have no answering owner)."""
    out = {}
    for raw, topics in app.assignor.external_topics_metadata().items():
        url = peer_url(raw)
        if url is not None:
            out[url] = sorted(topics.get(topic, ()))
    return out


def partition_of(key: str, partitions: int) -> int:
    return key_partition(key.encode(), partitions)


def is_self(app: faust.App, url: URL) -> bool:
    mine = URL(str(app.conf.canonical_url))
    return (url.host, url.port) == (mine.host, mine.port)


def quote_segment(segment: str) -> str:
    """One path segment, every byte outside ``A-Z a-z 0-9 - . _ ~`` percent-encoded; ``.``
    and ``..`` too, which would otherwise mean "this" and "the parent" folder."""
    quoted = quote(segment, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def path_qs(segments: list[str], query: dict[str, str] | None = None) -> str:
    """``["api", "properties", "a/b", "views"], {"hour": ...}`` -> an encoded path and query."""
    path = "/" + "/".join(quote_segment(s) for s in segments)
    if query:
        path += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    return path


def relay(answer: Answer, partition: int) -> tuple[int, dict | None]:
    """What to tell the client about the owner's answer: ``(status, None)`` to pass the
    owner's JSON body on, or ``(status, error body)`` when the owner's answer cannot be.

    The owner's own JSON answers (200, 400, 404, its 503 "not ready", its 504 "position not
    reached") pass. A refusal of our
    peer signature is not the client's fault; a failure or a body that is not JSON is
    reported as the owner's failure, never relabelled as JSON.
    """
    if answer.content_type != JSON:
        return 502, {"error": f"partition {partition}: owner answered {answer.status} without JSON"}
    if answer.status in (401, 403):
        return 502, {
            "error": f"partition {partition}: owner refused this worker's signature; "
            "is PEER_SECRET (or API_TOKEN) the same on every worker?"
        }
    if answer.status >= 500 and answer.status not in (503, 504):
        return 502, {"error": f"partition {partition}: owner failed with {answer.status}"}
    return answer.status, None


async def forward(
    session: aiohttp.ClientSession,
    url: URL,
    path: str,
    headers: dict[str, str],
    timeout_s: float = FORWARD_TIMEOUT_S,
) -> Answer:
    """GET ``path`` (encoded, sent exactly as given) from another worker.

    Raises OwnerUnreachable when the worker does not answer in time.
    """
    try:
        target = URL(str(url.origin()) + path, encoded=True)
        async with session.get(
            target,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            allow_redirects=False,
        ) as response:
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise OwnerUnreachable(url, f"answered more than {MAX_ANSWER_BYTES} bytes")
            return Answer(
                response.status, response.content_type, bytes(body),
                response.headers.get(POSITION_HEADER),
            )
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError) as exc:
        raise OwnerUnreachable(url, f"did not answer: {type(exc).__name__}") from exc


class Step(enum.Enum):
    """What a worker does next with a request for a key (``next_step``)."""

    LOCAL = "local"  # the partition is open here: answer from this worker's state
    FORWARD = "forward"  # another worker owns it: ask that worker
    WAIT = "wait"  # opening here, or no owner known (a rebalance): wait for a move, look again
    REFUSE = "refuse"  # a peer asked, but another worker owns it: answer 503 at once


def next_step(open_here: bool, owner: URL | None, owner_is_self: bool, routed: bool) -> Step:
    """The routing decision for one look at a key's partition.

    ``open_here``: its processor is open on this worker. ``owner``: who the group's last
    assignment says holds it (None: nobody, during a rebalance or before the first one).
    ``routed``: a peer forwarded the request. A forwarded request is never forwarded again
    (no chains, no loops between two workers that disagree about the owner while a
    rebalance spreads): when this worker knows another owner, it refuses at once, and the
    peer that asked looks again with its own, fresher, view of the group. A request waits
    for its partition to open here, or for an owner to be known, within its timeout.
    """
    if open_here:
        return Step.LOCAL
    if owner is None or owner_is_self:
        return Step.WAIT
    return Step.REFUSE if routed else Step.FORWARD


def worth_retrying(answer: Answer) -> bool:
    """An owner's answer that says it cannot answer yet (its 503 JSON: the partition is
    opening, or moved away from it): asking again, maybe another owner, may succeed."""
    return answer.status == 503 and answer.content_type == JSON
