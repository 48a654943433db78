"""``segment_partials``: each partition's share of every (segment, week) answer.

A segment's week is spread over partitions (views by property, unique users by user). Each
partition publishes its share to one compacted topic inside its commit transaction; every
worker tails that topic and answers any segment by adding the shares up. Property ids live
in exactly one partition, so the global top 10 is within the union of partition top 10s.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from app.engine.moved import Moved
from app.readmodels.tail import TopicTail
from app.tables.keys import MalformedKey, split_key, window_key
from app.tables.weekly import merge_top

VIEWS = "views"
USERS = "users"
# A views partition's position: the last offset of its input its published shares reflect.
POSITION = "position"
POSITION_SUBJECT = "views"
_PARTITION = re.compile(r"0|[1-9][0-9]*")


class BadPartial(ValueError):
    """A partials record this version cannot read (another format, or not ours)."""


class PartialKey(NamedTuple):
    kind: str
    partition: int
    week_ms: int
    segment: str


def partial_key(kind: str, partition: int, week_ms: int, segment: str) -> bytes:
    """The record key of one partition's share: the table key layout, so any segment works."""
    return window_key(kind, week_ms, str(partition), segment)


def parse_partial_key(key: bytes) -> PartialKey:
    """The exact inverse of ``partial_key``; BadPartial for any other bytes."""
    try:
        kind, week_ms, parts = split_key(key)
    except MalformedKey as exc:
        raise BadPartial(str(exc)) from None
    if kind not in (VIEWS, USERS, POSITION) or len(parts) != 2 or not _PARTITION.fullmatch(parts[0]):
        raise BadPartial(f"not a partials key: {key!r}")
    return PartialKey(kind, int(parts[0]), week_ms, parts[1])


def parse_share(kind: str, value: bytes) -> dict[str, Any]:
    """A share's JSON, checked whole before it is merged: a bad one never reaches the answers."""
    try:
        share = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise BadPartial(f"not JSON: {exc}") from None
    if kind == POSITION:
        ok = isinstance(share, dict) and isinstance(share.get("offset"), int) and (
            not isinstance(share["offset"], bool) and share["offset"] >= -1
        )
    elif kind == VIEWS:
        ok = (
            isinstance(share, dict)
            and _is_count(share.get("views"))
            and isinstance(share.get("top"), list)
            and all(
                isinstance(row, list) and len(row) == 2
                and isinstance(row[0], str) and _is_count(row[1])
                for row in share["top"]
            )
        )
    else:
        ok = isinstance(share, dict) and _is_count(share.get("uniqueUsers"))
    if not ok:
        raise BadPartial(f"not a {kind} share: {value[:200]!r}")
    return share


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def views_partial(views: int, top: list[list]) -> bytes:
    return orjson.dumps({"views": views, "top": top})


def users_partial(unique_users: int) -> bytes:
    return orjson.dumps({"uniqueUsers": unique_users})


def position_key(partition: int) -> bytes:
    return partial_key(POSITION, partition, 0, POSITION_SUBJECT)


def position_partial(offset: int) -> bytes:
    """Published with a views partition's shares, in the same transaction: every share it
    has published reflects its input up to ``offset``."""
    return orjson.dumps({"offset": offset})


@dataclass(slots=True)
class SegmentWeek:
    views: int = 0
    unique_users: int = 0
    top_properties: list[list] = field(default_factory=list)


class PartialsView:
    """In-memory merge of every partition's shares; fed by a consumer of the partials topic."""

    def __init__(self) -> None:
        # (segment, week) -> {(kind, partition): value}
        self._shares: dict[tuple[str, int], dict[tuple[str, int], dict]] = {}
        # views partition -> last input offset its published shares reflect
        self.positions: dict[int, int] = {}
        self.moved = Moved()
        # week -> segment -> its views over every partition: a week's segments and its most
        # viewed ones without walking every slot
        self._weeks: dict[int, dict[str, int]] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Merge one record; BadPartial (and no change) for a record it cannot read."""
        kind, partition, week, segment = parse_partial_key(key)
        if kind == POSITION:
            if value is None:
                self.positions.pop(partition, None)
            else:
                self.positions[partition] = parse_share(kind, value)["offset"]
            self.moved.notify()
            return
        slot = (segment, week)
        if value is None:
            shares = self._shares.get(slot)
            if shares is not None:
                old = shares.pop((kind, partition), None)
                self._add_views(week, segment, -_views_of(kind, old))
                if not shares:
                    del self._shares[slot]
                    week_views = self._weeks[week]
                    del week_views[segment]
                    if not week_views:
                        del self._weeks[week]
            return
        share = parse_share(kind, value)
        shares = self._shares.setdefault(slot, {})
        old = shares.get((kind, partition))
        shares[(kind, partition)] = share
        self._weeks.setdefault(week, {}).setdefault(segment, 0)
        self._add_views(week, segment, _views_of(kind, share) - _views_of(kind, old))

    def _add_views(self, week: int, segment: str, delta: int) -> None:
        if delta:
            self._weeks[week][segment] += delta

    def top_segments(self, week_ms: int, limit: int) -> tuple[list[tuple[str, SegmentWeek]], int]:
        """The week's ``limit`` most viewed segments (ties: segment ascending) with their
        answers, and how many segments the week has."""
        week_views = self._weeks.get(week_ms, {})
        best = heapq.nsmallest(limit, week_views.items(), key=lambda item: (-item[1], item[0]))
        return [(segment, self.segment_week(segment, week_ms)) for segment, _ in best], len(
            week_views
        )

    def segment_week(self, segment: str, week_ms: int) -> SegmentWeek:
        answer = SegmentWeek()
        tops = []
        for (kind, _), share in self._shares.get((segment, week_ms), {}).items():
            if kind == VIEWS:
                answer.views += share["views"]
                tops.append(share["top"])
            else:
                answer.unique_users += share["uniqueUsers"]
        answer.top_properties = merge_top(tops)
        return answer

    def segments(self, week_ms: int) -> list[str]:
        return sorted(self._weeks.get(week_ms, ()))

    def weeks(self) -> list[int]:
        """Every week some share is held for: ``diff`` walks all of them (app/replay/snapshot)."""
        return sorted(self._weeks)


def _views_of(kind: str, share: dict | None) -> int:
    return share["views"] if share is not None and kind == VIEWS else 0


def partials_tail(
    view: PartialsView,
    topic: str,
    client_kwargs: dict[str, Any],
    on_skipped: Callable[[], None] | None = None,
) -> TopicTail:
    def apply(key: bytes | None, value: bytes | None) -> None:
        if key is None:
            raise ValueError("partials record without a key")
        view.apply(key, value)

    return TopicTail(topic, client_kwargs, apply, on_skipped=on_skipped)
