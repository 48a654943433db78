"""Commits that wait on the brokers, and since when: what tells a stalled worker from a busy one.

When fewer replicas are in sync than a topic's ``min.insync.replicas`` (two of three brokers
down), or the brokers cannot be reached, a stage's transaction can neither complete nor
fail for good: the writer retries it (``app.engine.transactions``) and idempotent produce
requests are retried by the client itself, for as long as it takes. Nothing is lost or
skipped meanwhile, but nothing moves either, and a worker that only waits says nothing. This
watch says it: every commit and every opening of a partition (which waits for its previous
owner's transaction) is registered while it runs; one that has run longer than the alert threshold is a
stall, with the last error seen as its cause. The worker logs when a stall starts and ends,
answers 503 on ``/ready`` with the cause, and sets ``property_analytics_commits_stalled``.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stall:
    """The oldest piece of work waiting on the brokers for longer than the threshold."""

    what: str
    seconds: float
    cause: str
    waiting: int  # commits and openings in flight, this one included

    def as_json(self) -> dict[str, object]:
        return {
            "what": self.what,
            "seconds": round(self.seconds, 1),
            "cause": self.cause,
            "waiting": self.waiting,
        }


class CommitWatch:
    """Work in flight against the brokers (``watching``), its errors (``failed``)."""

    def __init__(
        self,
        alert_after_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """``on_error`` sees every error passed to ``failed`` (a metric counts them)."""
        self._alert_after_s = alert_after_s
        self._on_error = on_error
        self._clock = clock
        self._ids = itertools.count()
        self._inflight: dict[int, tuple[str, float]] = {}
        self._last_error: dict[str, str] = {}
        self._stalled: Stall | None = None  # as of the last ``check``
        self._stalled_at: float | None = None

    @contextmanager
    def watching(self, what: str) -> Iterator[Callable[[BaseException], None]]:
        """``what`` waits on the brokers while the block runs; the block is given the call
        that notes each error it meets (``failed``)."""
        token = next(self._ids)
        self._inflight[token] = (what, self._clock())
        try:
            yield functools.partial(self.failed, what)
        finally:
            del self._inflight[token]
            if not any(w == what for w, _ in self._inflight.values()):
                self._last_error.pop(what, None)

    def failed(self, what: str, exc: BaseException) -> None:
        """The latest error of ``what`` (its stall's cause until it ends)."""
        self._last_error[what] = repr(exc)
        if self._on_error is not None:
            self._on_error(exc)

    def stall(self) -> Stall | None:
        """The oldest work in flight for longer than the threshold, if any."""
        if not self._inflight:
            return None
        now = self._clock()
        what, started = min(self._inflight.values(), key=lambda item: item[1])
        waited = now - started
        if waited < self._alert_after_s:
            return None
        cause = self._last_error.get(what) or "no answer from the brokers yet"
        return Stall(what, waited, cause, len(self._inflight))

    def oldest_seconds(self) -> float:
        """How long the oldest work in flight has waited (0 when none)."""
        if not self._inflight:
            return 0.0
        return self._clock() - min(started for _, started in self._inflight.values())

    def check(self) -> Stall | None:
        """``stall()``, logging when a stall starts and when it ends (called on a timer)."""
        stall = self.stall()
        if stall is not None and self._stalled is None:
            self._stalled_at = self._clock() - stall.seconds
            log.error(
                "commits stalled: %s has waited %.0fs on the brokers (%s); %d commits waiting. "
                "Nothing is lost or skipped: processing waits and the commit is retried until the "
                "brokers take it (fewer replicas in sync than min.insync.replicas, or brokers "
                "unreachable)",
                stall.what, stall.seconds, stall.cause, stall.waiting,
            )
        elif stall is None and self._stalled is not None:
            took = self._clock() - (self._stalled_at or self._clock())
            log.warning("commits resumed: %s went through after %.1fs", self._stalled.what, took)
            self._stalled_at = None
        self._stalled = stall
        return stall
