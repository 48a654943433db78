"""Making a shadow the live app: what the live outputs lack of the shadow's, copied at once.

With the live and the shadow's workers stopped, on every input partition the live app has
published the outputs of the records before its committed offset ``L`` and the shadow those
before its offset ``S``, to its own topics. Promotion needs ``S >= L`` (the shadow is not
behind), then copies to the live topics, in one transaction with the manifest's ``promoted``
mark:

- every shadow insight whose insightId the live insights topic does not hold yet, except the
  shadow's warm-up insights (a spike whose baseline, or a trend whose previous week, began
  before ``--from``, or a rented property's demand in the hour ``--from`` falls in: the
  shadow saw only part of it);
- every shadow dead letter of an input offset at or after ``L`` (the live app dead-lettered
  those before), for each input: the views, the profiles and the property events.

The shadow's workers then run as the live app (its app id, the live output topics) and go on
from ``S``. So each input record's dead letter is published once, and each insight the shadow
finds is on the live topic once it is found; an insight the live rules found that the shadow's
rules find only later is published a second time then, with the same insightId (consumers
deduplicate on it, as the contract asks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from app.models.insights import (
    PROPERTY_HOURLY_SPIKE,
    RENTED_PROPERTY_DEMAND,
    SEGMENT_PROPERTY_TREND,
)
from app.replay.compare import first_hour, first_week
from app.settings import Settings
from app.windows import HOUR_MS, WEEK_MS, parse_iso

ORIGIN_PARTITION = "dlq.origin.partition"
ORIGIN_OFFSET = "dlq.origin.offset"


def in_warm_up(doc: Mapping[str, Any], from_ms: int, baseline_hours: int) -> bool:
    """Whether an insight of a shadow started at ``from_ms`` depends on data before it (or
    cannot be read: then it is not copied either)."""
    try:
        start = parse_iso(doc["windowStart"])
        kind = doc["type"]
    except (KeyError, TypeError, ValueError):
        return True
    if kind == PROPERTY_HOURLY_SPIKE:
        return start < first_hour(from_ms) + baseline_hours * HOUR_MS
    if kind == SEGMENT_PROPERTY_TREND:
        return start < first_week(from_ms) + WEEK_MS
    if kind == RENTED_PROPERTY_DEMAND:
        # The hour's views and the property's state at each view's time: the shadow reads the
        # property events whole, so only an hour that began before --from is partial.
        return start < first_hour(from_ms)
    return True


@dataclass(frozen=True)
class Route:
    """One input topic, with where the live app and the shadow dead-letter its records."""

    source: str
    live_dlq: str
    shadow_dlq: str


def routes(live: Settings, shadow: Settings) -> list[Route]:
    """Every input whose position promotion checks and whose dead letters it copies."""
    return [
        Route(live.views_topic, live.dlq_views_topic, shadow.dlq_views_topic),
        Route(live.profiles_topic, live.dlq_profiles_topic, shadow.dlq_profiles_topic),
        Route(
            live.property_events_topic,
            live.dlq_property_events_topic,
            shadow.dlq_property_events_topic,
        ),
    ]


def origin(record: ConsumerRecord) -> tuple[int, int] | None:
    """(input partition, input offset) of a dead letter, from its headers."""
    headers = dict(record.headers or ())
    try:
        return int(headers[ORIGIN_PARTITION]), int(headers[ORIGIN_OFFSET])
    except (KeyError, ValueError, TypeError):
        return None


def dead_letters_after(
    records: Iterable[ConsumerRecord], positions: Mapping[int, int]
) -> list[ConsumerRecord]:
    """The dead letters of input offsets at or after the live app's position on their
    partition (all of them where it has none)."""
    out = []
    for record in records:
        where = origin(record)
        if where is not None and where[1] >= positions.get(where[0], 0):
            out.append(record)
    return out


def behind(live: Mapping[int, int], shadow: Mapping[int, int], topic: str) -> list[str]:
    """Partitions where the shadow has not reached the live app's committed offset."""
    return [
        f"{topic}[{p}]: shadow at {shadow.get(p, 0)}, live at {offset}"
        for p, offset in sorted(live.items())
        if shadow.get(p, 0) < offset
    ]


def positions_of(committed: Mapping[Any, Any], topics: Iterable[str]) -> dict[str, dict[int, int]]:
    """A group's committed offsets (TopicPartition -> OffsetAndMetadata), per input topic."""
    return {
        topic: {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
        for topic in topics
    }


def lagging(
    live: Mapping[str, Mapping[int, int]],
    shadow: Mapping[str, Mapping[int, int]],
    topics: Iterable[str],
) -> list[str]:
    """Every partition of every input where the shadow is behind the live app."""
    return [
        line
        for topic in topics
        for line in behind(live.get(topic, {}), shadow.get(topic, {}), topic)
    ]


@dataclass
class Plan:
    """What a promotion copies: (topic, partition, key, value, headers) records."""

    insights: list[tuple[str, int, bytes | None, bytes | None, list]] = field(default_factory=list)
    dead_letters: list[tuple[str, int, bytes | None, bytes | None, list]] = field(
        default_factory=list
    )
    warm_up_left: int = 0
    already_live: int = 0

    @property
    def records(self) -> list[tuple[str, int, bytes | None, bytes | None, list]]:
        return [*self.insights, *self.dead_letters]


def plan_insights(
    plan: Plan,
    live_ids: set[str],
    shadow_records: Iterable[ConsumerRecord],
    warm_up: Callable[[Mapping[str, Any]], bool],
    topic: str,
    partition_of: Callable[[bytes], int],
) -> None:
    seen: set[str] = set()
    for record in shadow_records:
        try:
            doc = orjson.loads(record.value)
            insight_id = doc["insightId"]
        except (orjson.JSONDecodeError, TypeError, KeyError):
            continue
        if not isinstance(insight_id, str) or insight_id in seen:
            continue
        seen.add(insight_id)
        if insight_id in live_ids:
            plan.already_live += 1
        elif warm_up(doc):
            plan.warm_up_left += 1
        else:
            key = insight_id.encode()
            plan.insights.append((topic, partition_of(key), key, record.value, []))
