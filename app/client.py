"""Read-your-writes for whoever produces views: produce a view, then ask for its hour with the
record's own metadata (topic, partition, offset) as ``atLeast``, so that the answer counts it.

No polling: the worker that owns the partition answers once its state reflects the record
(or 504 after ``timeout_s``). Uses the clients the product already depends on (aiokafka,
aiohttp); the producer is the caller's, made with the cluster's connection settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer


@dataclass(frozen=True, slots=True)
class Written:
    """Where a produced record landed."""

    topic: str
    partition: int
    offset: int

    @property
    def bound(self) -> str:
        """The ``atLeast`` value that makes an answer include this record."""
        return f"{self.topic}:{self.partition}:{self.offset}"


class AnswerError(Exception):
    """The worker answered something else than 200; ``status`` and ``body`` say what."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


async def produce_view(
    producer: AIOKafkaProducer, view: dict[str, Any], topic: str = "property.views"
) -> Written:
    """Send one view, keyed by its propertyId, and wait for the broker's acknowledgement."""
    meta = await producer.send_and_wait(
        topic, key=view["propertyId"].encode(), value=orjson.dumps(view)
    )
    return Written(meta.topic, meta.partition, meta.offset)


async def hour_at_least(
    session: aiohttp.ClientSession,
    base_url: str,
    property_id: str,
    hour: str,
    bound: str,
    *,
    consistency: str = "committed",
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The property's hour as soon as it reflects ``bound`` (``Written.bound`` or a position
    token). Raises AnswerError for anything but 200: 504 when it was not reached in time, 400
    for a ``consistency`` other than ``committed``, ``latest`` or ``standby`` (with which a
    standby copy that reflects ``bound`` may answer while the owner cannot: ``"stale": true``
    and its ``lag`` in the answer)."""
    query = urlencode(
        {"hour": hour, "atLeast": bound, "consistency": consistency, "timeout": f"{timeout_s:g}"}
    )
    url = f"{base_url.rstrip('/')}/api/properties/{quote(property_id, safe='')}/views?{query}"
    wait = aiohttp.ClientTimeout(total=timeout_s + 10)
    async with session.get(url, headers=headers, timeout=wait) as response:
        raw = await response.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            body = raw.decode(errors="replace")
        if response.status != 200:
            raise AnswerError(response.status, body)
        return body


async def view_and_count(
    producer: AIOKafkaProducer,
    session: aiohttp.ClientSession,
    base_url: str,
    view: dict[str, Any],
    *,
    topic: str = "property.views",
    consistency: str = "committed",
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> tuple[Written, dict[str, Any]]:
    """Produce ``view`` and return where it landed with its hour's answer, which counts it."""
    written = await produce_view(producer, view, topic)
    answer = await hour_at_least(
        session, base_url, view["propertyId"], view["timestamp"], written.bound,
        consistency=consistency, timeout_s=timeout_s, headers=headers,
    )
    return written, answer
