"""Decode at the edge: raw bytes -> a typed event, or a Rejection with a stable reason code.

The framework's decoder never sees untrusted bytes: topics are consumed raw and every record
passes through here. Reasons are those of CONTRACT §3.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.models.events import PropertyViewed, Rejection, UserProfile
from app.windows import parse_iso

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"
BAD_TIMESTAMP = "bad_timestamp"
UNSUPPORTED_VERSION = "unsupported_version"
OVERSIZED = "oversized"
FUTURE_TIMESTAMP = "future_timestamp"
LATE = "late"

REASONS = (
    MALFORMED_JSON,
    MISSING_FIELD,
    BAD_TYPE,
    BAD_TIMESTAMP,
    UNSUPPORTED_VERSION,
    OVERSIZED,
    FUTURE_TIMESTAMP,
    LATE,
)
SUPPORTED_MAJOR_VERSIONS = frozenset({"1", "2"})


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def decode_view(
    raw: bytes | None, *, now_ms: int, max_bytes: int, future_tolerance_ms: int
) -> PropertyViewed | Rejection:
    """Validate one ``property.views`` value. ``now_ms`` is the wall clock, for future checks."""
    try:
        doc = _load(raw, max_bytes)
        version = _version(doc)
        timestamp_ms = _timestamp(doc, "timestamp")
        if timestamp_ms > now_ms + future_tolerance_ms:
            raise _Reject(FUTURE_TIMESTAMP, f"timestamp {doc['timestamp']} is in the future")
        return PropertyViewed(
            event_id=_required_str(doc, "eventId"),
            timestamp_ms=timestamp_ms,
            property_id=_required_str(doc, "propertyId"),
            user_id=_required_str(doc, "userId"),
            version=version,
            session_id=_optional(doc, "sessionId", str),
            source=_optional(doc, "source", str),
            duration_ms=_optional(doc, "durationMs", int),
        )
    except _Reject as exc:
        return exc.rejection


def decode_profile(raw: bytes | None, *, max_bytes: int) -> UserProfile | Rejection:
    """Validate one ``user.profiles`` value (v1.0 or v2.0). Tombstones are handled by the caller."""
    try:
        doc = _load(raw, max_bytes)
        version = _version(doc)
        updated_at = _optional(doc, "updatedAt", str)
        if updated_at is not None:
            _timestamp(doc, "updatedAt")
        return UserProfile(
            user_id=_required_str(doc, "userId"),
            segment=_required_str(doc, "segment"),
            version=version,
            updated_at=updated_at,
            email=_optional(doc, "email", str),
            profile=_optional(doc, "profile", dict),
        )
    except _Reject as exc:
        return exc.rejection


def _load(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    if raw is None:
        raise _Reject(MALFORMED_JSON, "value is empty")
    if len(raw) > max_bytes:
        raise _Reject(OVERSIZED, f"value is {len(raw)} bytes, limit {max_bytes}")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Reject(MALFORMED_JSON, str(exc)) from None
    if not isinstance(doc, dict):
        raise _Reject(BAD_TYPE, f"value is a JSON {type(doc).__name__}, not an object")
    return doc


def _required_str(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        raise _Reject(MISSING_FIELD, f"{name} is missing")
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise _Reject(MISSING_FIELD, f"{name} is empty")
    return value


def _optional(doc: dict[str, Any], name: str, kind: type) -> Any:
    value = doc.get(name)
    if value is None:
        return None
    # bool is an int subclass; a duration of `true` is a type error, not 1 ms.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Reject(BAD_TYPE, f"{name} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _version(doc: dict[str, Any]) -> str:
    version = doc.get("version", "1.0")
    if not isinstance(version, str):
        raise _Reject(BAD_TYPE, f"version must be a string, got {type(version).__name__}")
    if version.split(".", 1)[0] not in SUPPORTED_MAJOR_VERSIONS:
        raise _Reject(UNSUPPORTED_VERSION, f"version {version!r} is not 1.x or 2.x")
    return version


def _timestamp(doc: dict[str, Any], name: str) -> int:
    value = doc.get(name)
    if value is None:
        raise _Reject(MISSING_FIELD, f"{name} is missing")
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"{name} must be an ISO-8601 string, got {type(value).__name__}")
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise _Reject(BAD_TIMESTAMP, f"{name}: {exc}") from None
