"""``segment_partials``: each partition's share of every (segment, week) answer.

A segment's week is spread over partitions (views by property, unique users by user). Each
partition publishes its share to one compacted topic inside its commit transaction; every
worker tails that topic and answers any segment by adding the shares up. Property ids live
in exactly one partition, so the global top 10 is within the union of partition top 10s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from app.tables.keys import SEP
from app.tables.weekly import merge_top

VIEWS = "views"
USERS = "users"


def partial_key(kind: str, partition: int, week_ms: int, segment: str) -> bytes:
    return SEP.join((kind, str(partition), str(week_ms), segment)).encode()


def views_partial(views: int, top: list[list]) -> bytes:
    return orjson.dumps({"views": views, "top": top})


def users_partial(unique_users: int) -> bytes:
    return orjson.dumps({"uniqueUsers": unique_users})


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

    def apply(self, key: bytes, value: bytes | None) -> None:
        kind, partition, week, segment = key.decode().split(SEP)
        slot = (segment, int(week))
        if value is None:
            shares = self._shares.get(slot)
            if shares is not None:
                shares.pop((kind, int(partition)), None)
                if not shares:
                    del self._shares[slot]
            return
        self._shares.setdefault(slot, {})[(kind, int(partition))] = orjson.loads(value)

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
        return sorted(segment for segment, week in self._shares if week == week_ms)

    def weeks(self) -> list[int]:
        return sorted({week for _, week in self._shares})
