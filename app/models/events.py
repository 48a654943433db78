"""Typed input events, decoded from the camelCase JSON the upstream services publish."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, frozen=True)
class PropertyViewed:
    """One accepted-shape property view. Times are epoch milliseconds (UTC)."""

    event_id: str
    timestamp_ms: int
    property_id: str
    user_id: str
    version: str = "1.0"
    session_id: str | None = None
    source: str | None = None
    duration_ms: int | None = None


@dataclass(slots=True, frozen=True)
class UserProfile:
    """A viewer's profile, version 1.0 or 2.0 (2.0 adds the optional ``profile`` object)."""

    user_id: str
    segment: str
    version: str = "1.0"
    updated_at: str | None = None
    email: str | None = None
    profile: dict[str, Any] | None = field(default=None)

    def to_wire(self) -> dict[str, Any]:
        """The camelCase form of CONTRACT §3, without absent optional fields."""
        wire: dict[str, Any] = {
            "userId": self.user_id,
            "segment": self.segment,
            "version": self.version,
        }
        if self.updated_at is not None:
            wire["updatedAt"] = self.updated_at
        if self.email is not None:
            wire["email"] = self.email
        if self.profile is not None:
            wire["profile"] = self.profile
        return wire


@dataclass(slots=True, frozen=True)
class ProfileDeleted:
    """A ``user.profiles`` tombstone: the user's profile is deleted."""

    user_id: str


MAX_DETAIL_BYTES = 1024


@dataclass(slots=True, frozen=True)
class Rejection:
    """Why a record was refused; ``reason`` is one of the stable codes of CONTRACT §3."""

    reason: str
    detail: str

    def dlq_headers(self, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
        """The headers of the record's copy in the dead-letter topic (CONTRACT §3)."""
        return [
            ("dlq.reason", self.reason.encode()),
            ("dlq.detail", utf8_prefix(self.detail, MAX_DETAIL_BYTES)),
            ("dlq.origin.topic", topic.encode()),
            ("dlq.origin.partition", str(partition).encode()),
            ("dlq.origin.offset", str(offset).encode()),
        ]


def utf8_prefix(text: str, limit: int) -> bytes:
    """``text`` as UTF-8, cut to at most ``limit`` bytes at a character boundary (a header
    value that ends mid-character is not UTF-8)."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return raw
    return raw[:limit].decode("utf-8", "ignore").encode()


@dataclass(slots=True, frozen=True)
class PropertyEvent:
    """One decoded ``property.events`` record: ``event_type`` is ``created``, ``updated`` or
    ``rented`` (the ``property.`` prefix dropped); ``data`` holds only the known fields of
    that type, each of the right type (``app.codec.decode_property_event``)."""

    event_id: str
    event_type: str
    timestamp_ms: int
    property_id: str
    data: dict[str, Any]
    version: str = "1.0"
