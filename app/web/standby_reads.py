"""Answers from a standby copy (``?consistency=standby``), for when the owner cannot answer.

While a property's partition has no ready owner (a rebalance, a restore, an owner killed and
not yet noticed by the group), a worker that keeps a standby copy of it
(``app.engine.standby``) may answer from the copy instead of making the client wait or fail:
at each look at the partition that finds it not open here and its owner, if any, not answering
(unreachable, or its 503 while it opens the partition). Without a copy here, the worker first
asked tries the other members briefly: the assignment does not say who keeps copies.
The copy holds committed state only, as far as it has applied the stage's changelog: its
position is the input offset the stage stored with that state (``APPLIED_KEY``, written in
the same transaction), and its lag the committed changelog records it has not applied yet.
Such an answer is marked ``"stale": true`` with that ``lag``; any other answer to a standby
request is marked ``"stale": false``.

A copy answers only when it can say how stale it is (its consumer has fetched once) and it
reflects the ``atLeast`` bound, so a client that passes its last position back never sees one
go backwards.
"""

from __future__ import annotations

from app.engine.applied import APPLIED_KEY
from app.engine.store import CommittedState
from app.positions import Position

# A standby request gives the owner (or a member that may keep a copy) at most this much of
# its time at once: an owner still opening the partition (or gone, or hung) must not keep a
# copy's answer back.
OWNER_WAIT_S = 1.0


def copy_position(topic: str, partition: int, state: CommittedState) -> Position:
    """The input offset of ``topic[partition]`` the copy's state reflects (-1: none yet)."""
    raw = state.get(APPLIED_KEY)
    return Position({(topic, partition): int(raw) if raw is not None else -1})


def usable(position: Position, lag: int | None, bound: Position | None) -> bool:
    """A copy answers only when its lag is known and it reflects ``bound``."""
    return lag is not None and (bound is None or not position.behind(bound))


def marked(body: object, lag: int | None) -> object:
    """The answer's body marked stale with ``lag`` (a copy's), or fresh (``lag`` None)."""
    if not isinstance(body, dict):
        return body
    if lag is None:
        return {**body, "stale": False}
    return {**body, "stale": True, "lag": lag}
