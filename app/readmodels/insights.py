"""The newest insights (``analytics.insights``), for ``GET /api/insights`` and the dashboard."""

from __future__ import annotations

from collections import deque

import orjson


class InsightsMemory:
    """The newest insights, newest first; one copy per insightId."""

    def __init__(self, size: int) -> None:
        self._items: deque[dict] = deque(maxlen=size)
        self._ids: set[str] = set()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        insight = orjson.loads(value)
        if not isinstance(insight, dict) or not isinstance(insight.get("insightId"), str):
            raise ValueError("not an insight: no insightId")
        insight_id = insight["insightId"]
        if insight_id in self._ids:
            return
        if len(self._items) == self._items.maxlen:
            self._ids.discard(self._items[-1].get("insightId"))
        self._items.appendleft(insight)
        self._ids.add(insight_id)

    def latest(self, limit: int, insight_type: str | None = None) -> list[dict]:
        items = (i for i in self._items if insight_type is None or i.get("type") == insight_type)
        out = []
        for item in items:
            if len(out) >= limit:
                break
            out.append(item)
        return out
