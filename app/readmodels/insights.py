"""The newest insights (``analytics.insights``), for ``GET /api/insights`` and the dashboard.

Records come from whatever writes to the topic. One that is not an insight in the contract's
shape (CONTRACT §5: ids and type as texts, a subject of texts, its window and detection times
with an offset, metrics as an object) is refused here with the reason, which the tail logs
and counts (``app.readmodels.tail``): every answer and every dashboard refresh would otherwise
carry it, and a reader that cannot draw it would stop there.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import orjson

from app.windows import parse_iso

TIMES = ("windowStart", "windowEnd", "detectedAt")
# Times an insight may carry: the years 0001-9999 once in UTC, as every reader can show them.
FIRST_MS = parse_iso("0001-01-01T00:00:00Z")
LAST_MS = parse_iso("9999-12-31T23:59:59.999Z")


class BadInsight(ValueError):
    """A record of the insights topic that is not an insight; the message says why."""


def insight_problem(doc: Any) -> str | None:  # noqa: ANN401 - any parsed JSON
    """Why ``doc`` (parsed JSON) is not an insight this worker can serve, or None."""
    if not isinstance(doc, dict):
        return "not a JSON object"
    for name in ("insightId", "type"):
        if not isinstance(doc.get(name), str):
            return f"no {name} text"
    subject = doc.get("subject")
    if not isinstance(subject, dict) or not subject:
        return "no subject object"
    if not all(isinstance(v, str) for v in subject.values()):
        return "a subject value that is not a text"
    for name in TIMES:
        try:
            ms = parse_iso(doc.get(name))
        except (ValueError, TypeError, OverflowError):
            ms = None
        if ms is None or not FIRST_MS <= ms <= LAST_MS:
            return f"no {name} time with an offset"
    if not isinstance(doc.get("metrics"), dict):
        return "no metrics object"
    if not isinstance(doc.get("property"), dict | None):
        return "a property that is not an object"
    return None


class InsightsMemory:
    """The newest insights, newest first; one copy per insightId."""

    def __init__(self, size: int) -> None:
        self._items: deque[dict] = deque(maxlen=size)
        self._ids: set[str] = set()

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Hold one record; BadInsight (nothing held) for one that is not an insight."""
        if value is None:
            return
        try:
            insight = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise BadInsight(f"not JSON: {exc}") from None
        problem = insight_problem(insight)
        if problem is not None:
            raise BadInsight(f"not an insight: {problem}")
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
