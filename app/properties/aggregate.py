"""The property aggregate: its state is what applying its events in order gives.

Pure functions, no I/O: the stage applies each decoded event with ``apply``; the HTTP
``asOf`` answers and the rebuild command fold a stored history with ``rebuild``. Because
both go through ``apply``, a state rebuilt from the history always equals the stored one.

The rules (docs/behaviour.md, "Properties"):

- ``created`` comes first and once: it starts the property, status ``listed``;
- ``updated`` merges its fields into the state; with ``"status": "listed"`` it relists a
  rented property (status ``listed`` again); any other status in an update is refused;
- ``rented`` sets status ``rented``, with its ``rent`` and ``tenantId``; a rented property
  cannot be rented again before it is relisted;
- an event's timestamp may not be before the previous event's of the same property, so the
  history is in time order and "the state at time T" is a prefix of it.

An event that breaks a rule is refused (``invalid_transition``) and changes nothing; the
version counts the events applied, so the n-th applied event has version n.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.models.events import PropertyEvent
from app.windows import iso_ms

LISTED = "listed"
RENTED = "rented"
EVENT_TYPE_PREFIX = "property."


@dataclass(slots=True, frozen=True)
class PropertyState:
    """A property after ``version`` events; times are epoch ms of the first and last."""

    property_id: str
    status: str
    version: int
    created_at_ms: int
    updated_at_ms: int
    data: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """The HTTP answer (and stored form): camelCase, times as ISO-8601 UTC."""
        return {
            "propertyId": self.property_id,
            "status": self.status,
            "version": self.version,
            "createdAt": iso_ms(self.created_at_ms),
            "updatedAt": iso_ms(self.updated_at_ms),
            "data": self.data,
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            (self.property_id, self.status, self.version, self.created_at_ms,
             self.updated_at_ms, self.data)
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> PropertyState:
        property_id, status, version, created, updated, data = orjson.loads(raw)
        return cls(property_id, status, version, created, updated, data)

    def summary(self) -> dict[str, Any]:
        """What an insight carries of the property: title, city, status, price."""
        data = self.data
        return {
            "title": data.get("title"),
            "city": data.get("city"),
            "status": self.status,
            "price": data.get("price"),
        }


@dataclass(slots=True, frozen=True)
class StoredEvent:
    """One applied event as the event store keeps it, with the version it gave."""

    version: int
    event: PropertyEvent

    def to_wire(self) -> dict[str, Any]:
        e = self.event
        return {
            "version": self.version,
            "eventId": e.event_id,
            "eventType": EVENT_TYPE_PREFIX + e.event_type,
            "timestamp": iso_ms(e.timestamp_ms),
            "schemaVersion": e.version,
            "data": e.data,
        }

    def to_bytes(self) -> bytes:
        e = self.event
        return orjson.dumps(
            (self.version, e.event_id, e.event_type, e.timestamp_ms, e.property_id, e.data,
             e.version)
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> StoredEvent:
        version, event_id, event_type, ts, property_id, data, schema = orjson.loads(raw)
        return cls(version, PropertyEvent(event_id, event_type, ts, property_id, data, schema))


class Refused(str):
    """Why an event may not apply (its detail); the reason is always ``invalid_transition``."""


def apply(state: PropertyState | None, event: PropertyEvent) -> PropertyState | Refused:
    """The state after ``event``, or why it is refused. ``state`` is None before ``created``."""
    kind = event.event_type
    if state is None:
        if kind != "created":
            return Refused(f"property.{kind} before property.created")
        return PropertyState(
            event.property_id, LISTED, 1, event.timestamp_ms, event.timestamp_ms,
            dict(event.data),
        )
    if kind == "created":
        return Refused(f"property.created again (the property exists, version {state.version})")
    if event.timestamp_ms < state.updated_at_ms:
        return Refused(
            f"timestamp {iso_ms(event.timestamp_ms)} is before the property's last event "
            f"({iso_ms(state.updated_at_ms)})"
        )
    data = dict(state.data)
    if kind == "rented":
        if state.status == RENTED:
            return Refused("property.rented while the property is rented")
        data.update(event.data)
        status = RENTED
    else:  # updated
        changes = dict(event.data)
        status = changes.pop("status", state.status)
        if status not in (LISTED, state.status):
            return Refused(f"an update may only set status {LISTED!r}, not {status[:40]!r}")
        data.update(changes)
        if status == LISTED and state.status == RENTED:
            data.pop("tenantId", None)
            data.pop("rent", None)
    return PropertyState(
        state.property_id, status, state.version + 1, state.created_at_ms,
        event.timestamp_ms, data,
    )


def rebuild(
    history: Iterable[StoredEvent | PropertyEvent],
    as_of_ms: int | None = None,
    state: PropertyState | None = None,
) -> PropertyState | None:
    """The state after the stored events with a timestamp at or before ``as_of_ms`` (all of
    them when None): None if the property did not exist then. The history holds applied
    events only, in time order, so nothing in it is refused. ``state``: the state before the
    first of them (a snapshot), None when they start with ``created``."""
    for item in history:
        event = item.event if isinstance(item, StoredEvent) else item
        if as_of_ms is not None and event.timestamp_ms > as_of_ms:
            break
        result = apply(state, event)
        if isinstance(result, Refused):
            raise ValueError(f"stored history of {event.property_id!r} does not apply: {result}")
        state = result
    return state
