"""Per-partition processing of ``property.events``: decode, dedupe, apply to the aggregate.

One PropertiesProcessor per owned partition of ``property.events``. Each record is decoded
(``app.codec``), skipped when its ``eventId`` was applied to that property before, else
applied with the aggregate's rules (``app.properties.aggregate``); a refused event goes to
the dead-letter topic with reason ``invalid_transition``. The state, the history and the
applied offset are written to the partition's store and committed with the dead letters and
the input offset in one transaction (``app.engine.partitions``). Every decision reads only
the property's own state, so a replay decides exactly as the first run did.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app import codec
from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.engine.processor import Processor
from app.models.dead_letter import DeadLetterRoute
from app.models.events import PropertyEvent, Rejection
from app.properties import history, snapshots
from app.properties.aggregate import PropertyState, Refused, StoredEvent, apply
from app.settings import Settings
from app.tables.properties import PropertyTable

log = logging.getLogger(__name__)


@dataclass(slots=True, frozen=True)
class PropertiesConfig:
    source_topic: str
    dlq_topic: str
    max_value_bytes: int
    future_tolerance_ms: int
    dlq_max_message_bytes: int
    max_event_fields: int = 64
    max_version_chars: int = 16

    @classmethod
    def from_settings(cls, s: Settings) -> PropertiesConfig:
        return cls(
            source_topic=s.property_events_topic,
            dlq_topic=s.dlq_property_events_topic,
            max_value_bytes=s.max_value_bytes,
            future_tolerance_ms=int(s.future_tolerance_seconds * 1000),
            dlq_max_message_bytes=s.dlq_max_message_bytes,
            max_event_fields=s.max_event_fields,
            max_version_chars=s.max_version_chars,
        )


class PropertiesProcessor(Processor):
    def __init__(
        self, partition: int, store: PartitionStore, outbox: Outbox, config: PropertiesConfig
    ) -> None:
        super().__init__(
            partition, store, outbox,
            DeadLetterRoute(config.source_topic, config.dlq_topic, config.dlq_max_message_bytes),
        )
        self.config = config
        self.table = PropertyTable(store)

    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        cfg = self.config
        event = codec.decode_property_event(
            key,
            value,
            now_ms=now_ms,
            max_bytes=cfg.max_value_bytes,
            future_tolerance_ms=cfg.future_tolerance_ms,
            max_fields=cfg.max_event_fields,
            max_version_chars=cfg.max_version_chars,
        )
        if isinstance(event, Rejection):
            self._reject(offset, key, value, event)
            return
        table = self.table
        if table.has_applied(event.property_id, event.event_id):
            self.outcomes["property_duplicate"] += 1
            return
        result = apply(table.state(event.property_id), event)
        if isinstance(result, Refused):
            self._reject(offset, key, value, Rejection(codec.INVALID_TRANSITION, str(result)))
            return
        table.record(result, StoredEvent(result.version, event))
        self.outcomes["property_applied"] += 1

    def state_at(self, property_id: str, ts_ms: int) -> PropertyState | None:
        """The property as it was at ``ts_ms`` (its events up to then), with pending writes:
        what the views stage joins a view with. One read when nothing happened since, else
        O(log n) in the history's length (``app.properties.history``)."""
        return history.state_at(self.table, property_id, ts_ms)

    def _reject(
        self, offset: int, key: bytes | None, value: bytes | None, rejection: Rejection
    ) -> None:
        log.warning(
            "%s[%d]@%d rejected: %s (%s)",
            self.config.source_topic, self.partition, offset, rejection.reason,
            rejection.detail[:200],
        )
        self.dead_letter(offset, key, value, rejection)

    def commit_step(self, now_ms: int) -> None:
        snapshots.step(self.table, self.store)  # a store from before snapshots: a bit more


__all__ = ["PropertiesConfig", "PropertiesProcessor", "PropertyEvent"]
