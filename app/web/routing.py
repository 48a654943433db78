"""Which worker owns a key, and forwarding a request to it.

Ownership comes from faust's assignor, which shares every worker's URL and partitions with
the group; the key's partition is the Java client's default (murmur2) partitioner, the
same one the producers of ``property.views`` use.
"""

from __future__ import annotations

import asyncio

import aiohttp
import faust
from yarl import URL

from app.pipeline.views import key_partition

ROUTED_HEADER = "X-Routed-By"
FORWARD_TIMEOUT_S = 10.0


class OwnerUnreachable(Exception):
    """The owner of a key did not answer (down, restarting, or too slow)."""


def owner_url(app: faust.App, topic: str, partition: int) -> URL | None:
    for url, topics in app.assignor.external_topics_metadata().items():
        if partition in topics.get(topic, ()):
            return URL(url)
    return None


def members(app: faust.App, topic: str) -> dict[URL, list[int]]:
    """Every worker of the group (this one included) and its assigned partitions of ``topic``."""
    return {
        URL(url): sorted(topics.get(topic, ()))
        for url, topics in app.assignor.external_topics_metadata().items()
    }


def partition_of(key: str, partitions: int) -> int:
    return key_partition(key.encode(), partitions)


def is_self(app: faust.App, url: URL) -> bool:
    mine = URL(str(app.conf.canonical_url))
    return (url.host, url.port) == (mine.host, mine.port)


async def forward(
    session: aiohttp.ClientSession,
    url: URL,
    path_qs: str,
    headers: dict[str, str],
    timeout_s: float = FORWARD_TIMEOUT_S,
) -> tuple[int, bytes]:
    """GET the same path on another worker; returns (status, body).

    Raises OwnerUnreachable when the worker does not answer in time.
    """
    target = url.with_path("").join(URL(path_qs))
    try:
        async with session.get(
            target, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            return response.status, await response.read()
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise OwnerUnreachable(f"{url} did not answer: {type(exc).__name__}") from exc
