"""The TrendInsight published to ``analytics.insights`` (CONTRACT §5)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import quote

import orjson

from app.windows import iso_ms

PROPERTY_HOURLY_SPIKE = "property_hourly_spike"
SEGMENT_PROPERTY_TREND = "segment_property_trend"
RENTED_PROPERTY_DEMAND = "rented_property_demand"


def id_component(value: str) -> str:
    """An id as one ``:``-separated component of an ``insightId``: the bytes of its UTF-8 form
    outside ``A-Z a-z 0-9 - . _ ~`` become ``%XX`` (upper-case hex), so ``:`` in an id cannot
    make two insights share an id (``prop-812`` stays ``prop-812``, ``a:b`` is ``a%3Ab``)."""
    return quote(value, safe="")


@dataclass(slots=True, frozen=True)
class TrendInsight:
    insight_id: str
    type: str
    subject: dict[str, str]
    window_start_ms: int
    window_end_ms: int
    metrics: dict[str, Any]
    detected_at_ms: int
    # The property's title, city, status and price when the insight was made (None: the
    # property has no aggregate then, and the insight has no ``property``).
    property: dict[str, Any] | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = {
            "insightId": self.insight_id,
            "type": self.type,
            "subject": self.subject,
            "windowStart": iso_ms(self.window_start_ms),
            "windowEnd": iso_ms(self.window_end_ms),
            "metrics": self.metrics,
            "detectedAt": iso_ms(self.detected_at_ms),
        }
        if self.property is not None:
            wire["property"] = self.property
        return wire

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_wire())


def hour_insight(
    kind: str,
    property_id: str,
    hour_start_ms: int,
    hour_end_ms: int,
    metrics: dict[str, Any],
    now_ms: int,
    property: dict[str, Any] | None = None,
) -> TrendInsight:
    """An insight of type ``kind`` about one property in one hour: one per (type, property,
    hour), its id says which."""
    return TrendInsight(
        insight_id=f"{kind}:{id_component(property_id)}:{iso_ms(hour_start_ms)}",
        type=kind,
        subject={"propertyId": property_id},
        window_start_ms=hour_start_ms,
        window_end_ms=hour_end_ms,
        metrics=metrics,
        detected_at_ms=now_ms,
        property=property,
    )


spike_insight = partial(hour_insight, PROPERTY_HOURLY_SPIKE)
# A property rented at the time of a view drew at least the spike threshold of views that hour.
rented_demand_insight = partial(hour_insight, RENTED_PROPERTY_DEMAND)


def trend_insight(
    segment: str,
    property_id: str,
    week_start_ms: int,
    week_end_ms: int,
    metrics: dict[str, Any],
    now_ms: int,
    property: dict[str, Any] | None = None,
) -> TrendInsight:
    return TrendInsight(
        insight_id=(
            f"{SEGMENT_PROPERTY_TREND}:{id_component(segment)}:{id_component(property_id)}"
            f":{iso_ms(week_start_ms)}"
        ),
        type=SEGMENT_PROPERTY_TREND,
        subject={"segment": segment, "propertyId": property_id},
        window_start_ms=week_start_ms,
        window_end_ms=week_end_ms,
        metrics=metrics,
        detected_at_ms=now_ms,
        property=property,
    )
