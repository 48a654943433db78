"""``Moved``: a signal that a partition's applied or committed offset has moved.

Whoever waits for a position (``atLeast``) takes the current ``Moved.next()`` before it looks
at the offsets, then waits on it: a move between the look and the wait is never missed, and a
waiter wakes once per move, not on a polling timer. Notifying with nobody waiting costs a
check of one attribute.
"""

from __future__ import annotations

import asyncio


class Moved:
    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    def next(self) -> asyncio.Future[None]:
        """A future that completes at the next ``notify``."""
        future = self._future
        if future is None or future.done():
            future = self._future = asyncio.get_event_loop().create_future()
        return future

    def notify(self) -> None:
        future, self._future = self._future, None
        if future is not None and not future.done():
            future.set_result(None)
