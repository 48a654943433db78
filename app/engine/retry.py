"""Retrying what fails for a while: broker restarts, timeouts, lost connections.

One policy for every place that talks to Kafka: try; on a retriable error, log it and try
again after a delay that grows to a ceiling; an error the caller knows will come back every
time (a refusal) is logged and raised at once, since retrying it would stall the work for
ever. The loop ends only with success, a refusal, an error that is not retriable, or the
task's cancellation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What the broker, the network or a slow answer can cause and a later try can get past.
TRANSIENT: tuple[type[BaseException], ...] = (KafkaError, OSError, asyncio.TimeoutError)


class Backoff:
    """Delays that start at ``first`` and grow by ``factor`` up to ``ceiling`` (seconds)."""

    def __init__(self, first: float = 0.5, ceiling: float = 5.0, factor: float = 2.0) -> None:
        self._next = first
        self._ceiling = ceiling
        self._factor = factor

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(delay * self._factor, self._ceiling)
        return delay


def constant(seconds: float) -> Backoff:
    """The same delay every time (a reader reconnecting)."""
    return Backoff(seconds, seconds)


def _never(_: BaseException) -> bool:
    return False


async def retry(
    attempt: Callable[[], Awaitable[T]],
    what: str,
    *,
    retriable: tuple[type[BaseException], ...] = TRANSIENT,
    refused: Callable[[BaseException], bool] = _never,
    backoff: Backoff | None = None,
    before_retry: Callable[[BaseException], Awaitable[None]] | None = None,
) -> T:
    """``await attempt()`` until it returns, and return its result.

    A ``retriable`` error is logged (``what`` names the work) and the attempt made again
    after the next ``backoff`` delay, then ``before_retry(error)`` (a fresh client, a check
    that the work is still ours: it may raise to end the retries). A retriable error that
    ``refused`` says will repeat is logged and raised. Anything else is raised as is.
    """
    backoff = backoff or Backoff()
    while True:
        try:
            return await attempt()
        except retriable as exc:
            if refused(exc):
                log.error("%s refused for good, not retried: %r", what, exc)
                raise
            delay = backoff.next_delay()
            log.warning("%s failed (%r); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
            if before_retry is not None:
                await before_retry(exc)
