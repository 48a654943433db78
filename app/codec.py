"""Decode at the edge: a raw record (key and value bytes) -> a typed event, or a Rejection with
a stable reason code.

The framework's decoder never sees untrusted bytes: topics are consumed raw and every record
passes through here. The reasons are those of the product's input rules (docs/behaviour.md).
Every function here is total: whatever the bytes, it returns an event or a Rejection, never
raises. Checks run in this order, and the first that fails names the reason: size and JSON
(``oversized``, ``malformed_json``, ``bad_type``), ``version``, timestamps, fields
(``missing_field``, ``bad_type``, ``bad_id``), then the record's key (``key_mismatch``).
A profile's key is checked first (``bad_id``), since a tombstone has nothing else.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from app.models.events import (
    ProfileDeleted,
    PropertyEvent,
    PropertyViewed,
    Rejection,
    UserProfile,
)
from app.windows import parse_iso

MALFORMED_JSON = "malformed_json"
MISSING_FIELD = "missing_field"
BAD_TYPE = "bad_type"
BAD_TIMESTAMP = "bad_timestamp"
UNSUPPORTED_VERSION = "unsupported_version"
OVERSIZED = "oversized"
FUTURE_TIMESTAMP = "future_timestamp"
LATE = "late"
BAD_ID = "bad_id"
KEY_MISMATCH = "key_mismatch"
# A property event that breaks the aggregate's rules (app.properties.aggregate).
INVALID_TRANSITION = "invalid_transition"

REASONS = (
    MALFORMED_JSON,
    MISSING_FIELD,
    BAD_TYPE,
    BAD_TIMESTAMP,
    UNSUPPORTED_VERSION,
    OVERSIZED,
    FUTURE_TIMESTAMP,
    LATE,
    BAD_ID,
    KEY_MISMATCH,
    INVALID_TRANSITION,
)
SUPPORTED_MAJOR_VERSIONS = frozenset({"1", "2"})
MAX_ID_BYTES = 256
MAX_DEPTH = 32  # JSON nesting deeper than this is malformed_json
# A control character, or a lone surrogate (a str that no UTF-8 encodes): one scan per text.
_BAD_CHAR = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# What an id may not hold, in one precompiled class so a valid id costs one scan: C0 and C1
# controls and DEL, the bidirectional controls (ALM, LRM, RLM, the embeddings and overrides
# U+202A-U+202E, the isolates U+2066-U+2069), the zero-width and invisible format characters
# (U+200B-U+200D, word joiner U+2060, BOM U+FEFF), and lone surrogates. Ids are compared by
# their UTF-8 bytes without normalisation, so a character that displays as nothing would let
# one id look like another.
_BAD_ID_CHAR = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"
    "\ud800-\udfff]"
)
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class _Reject(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)


def decode_view(
    key: bytes | None,
    raw: bytes | None,
    *,
    now_ms: int,
    max_bytes: int,
    future_tolerance_ms: int,
) -> PropertyViewed | Rejection:
    """Validate one ``property.views`` record. ``now_ms`` is the wall clock, for future checks.
    The record's key must be its ``propertyId`` (the partition the HTTP API asks)."""
    try:
        doc = _load(raw, max_bytes)
        version = _version(doc)
        timestamp_ms = _timestamp(doc, "timestamp")
        if timestamp_ms > now_ms + future_tolerance_ms:
            raise _Reject(FUTURE_TIMESTAMP, f"timestamp {doc['timestamp']} is in the future")
        event = PropertyViewed(
            event_id=_required_id(doc, "eventId"),
            timestamp_ms=timestamp_ms,
            property_id=_required_id(doc, "propertyId"),
            user_id=_required_id(doc, "userId"),
            version=version,
            session_id=_optional(doc, "sessionId", str),
            source=_optional(doc, "source", str),
            duration_ms=_optional(doc, "durationMs", int),
        )
        if key is None:
            raise _Reject(KEY_MISMATCH, "the record has no key; it must be the propertyId")
        if key != event.property_id.encode():
            raise _Reject(KEY_MISMATCH, f"key {_show(key)} is not the propertyId {event.property_id!r}")
        return event
    except _Reject as exc:
        return exc.rejection


PROPERTY_EVENT_TYPES = ("created", "updated", "rented")
_EVENT_TYPE_PREFIX = "property."
# The fields each event type may carry in ``data`` (others are ignored, as unknown fields are)
# and those it must carry.
_PROPERTY_FIELDS: dict[str, tuple[str, ...]] = {
    "created": ("title", "city", "price", "bedrooms"),
    "updated": ("title", "city", "price", "bedrooms", "status"),
    "rented": ("rent", "tenantId"),
}
_PROPERTY_REQUIRED: dict[str, tuple[str, ...]] = {
    "created": ("title", "city", "price"),
    "updated": (),
    "rented": (),
}


def decode_property_event(
    key: bytes | None,
    raw: bytes | None,
    *,
    now_ms: int,
    max_bytes: int,
    future_tolerance_ms: int,
    max_fields: int = 64,
    max_version_chars: int = 16,
) -> PropertyEvent | Rejection:
    """Validate one ``property.events`` record, in the order and with the reasons of a view
    (its key must be its ``propertyId``); ``eventType`` must be one of ``property.created``,
    ``property.updated``, ``property.rented`` (else ``bad_type``) and ``data`` an object whose
    known fields have their types. Whether the event may apply is the aggregate's question
    (``invalid_transition``), not the codec's. An event is kept for ever, so more than
    ``max_fields`` fields (its own and its ``data``'s) or a ``version`` longer than
    ``max_version_chars`` is ``oversized``, checked with the size."""
    try:
        doc = _load(raw, max_bytes)
        _check_event_size(doc, max_fields, max_version_chars)
        version = _version(doc)
        timestamp_ms = _timestamp(doc, "timestamp")
        if timestamp_ms > now_ms + future_tolerance_ms:
            raise _Reject(FUTURE_TIMESTAMP, f"timestamp {doc['timestamp']} is in the future")
        event_id = _required_id(doc, "eventId")
        property_id = _required_id(doc, "propertyId")
        event_type = _event_type(doc)
        data = _property_data(doc, event_type)
        if key is None:
            raise _Reject(KEY_MISMATCH, "the record has no key; it must be the propertyId")
        if key != property_id.encode("utf-8", "surrogatepass"):
            raise _Reject(KEY_MISMATCH, f"key {_show(key)} is not the propertyId {property_id!r}")
        return PropertyEvent(event_id, event_type, timestamp_ms, property_id, data, version)
    except _Reject as exc:
        return exc.rejection


def _check_event_size(doc: dict[str, Any], max_fields: int, max_version_chars: int) -> None:
    data = doc.get("data")
    fields = len(doc) + (len(data) if isinstance(data, dict) else 0)
    if fields > max_fields:
        raise _Reject(OVERSIZED, f"the event has {fields} fields with its data's, limit {max_fields}")
    version = doc.get("version")
    if isinstance(version, str) and len(version) > max_version_chars:
        raise _Reject(
            OVERSIZED, f"version is {len(version)} characters, limit {max_version_chars}"
        )


def _event_type(doc: dict[str, Any]) -> str:
    value = doc.get("eventType")
    if value is None:
        raise _Reject(MISSING_FIELD, "eventType is missing")
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"eventType must be a string, got {type(value).__name__}")
    short = value[len(_EVENT_TYPE_PREFIX):] if value.startswith(_EVENT_TYPE_PREFIX) else None
    if short not in PROPERTY_EVENT_TYPES:
        raise _Reject(
            BAD_TYPE,
            f"eventType {value[:80]!r} is not one of "
            + ", ".join(_EVENT_TYPE_PREFIX + t for t in PROPERTY_EVENT_TYPES),
        )
    return short


def _property_data(doc: dict[str, Any], event_type: str) -> dict[str, Any]:
    data = doc.get("data")
    if data is None:
        raise _Reject(MISSING_FIELD, "data is missing")
    if not isinstance(data, dict):
        raise _Reject(BAD_TYPE, f"data must be an object, got {type(data).__name__}")
    for name in _PROPERTY_REQUIRED[event_type]:
        if data.get(name) is None:
            raise _Reject(MISSING_FIELD, f"data.{name} is missing")
    known = {}
    for name in _PROPERTY_FIELDS[event_type]:
        value = data.get(name)
        if value is not None:
            known[name] = _property_field(name, value)
    return known


def _property_field(name: str, value: Any) -> Any:
    if name in ("title", "city", "status"):
        if not isinstance(value, str):
            raise _Reject(BAD_TYPE, f"data.{name} must be a string, got {type(value).__name__}")
        if _BAD_CHAR.search(value) or len(value) > MAX_TEXT_CHARS:
            raise _Reject(
                BAD_TYPE,
                f"data.{name} must be UTF-8 text without control characters, at most "
                f"{MAX_TEXT_CHARS} characters",
            )
        return value
    if name == "tenantId":
        if not isinstance(value, str):
            raise _Reject(BAD_TYPE, f"data.tenantId must be a string, got {type(value).__name__}")
        problem = id_problem(value)
        if problem is not None:
            raise _Reject(BAD_ID, f"data.tenantId {problem}")
        return value
    if name == "bedrooms":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
            raise _Reject(BAD_TYPE, f"data.bedrooms must be a whole number from 0, got {value!r:.40}")
        return value
    # price, rent: a finite amount from 0 (orjson never yields NaN or infinity)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_AMOUNT:
        raise _Reject(BAD_TYPE, f"data.{name} must be a number from 0, got {value!r:.40}")
    return value


MAX_TEXT_CHARS = 1000
MAX_AMOUNT = 10**15  # beyond it a JSON number loses whole units in a double


def decode_profile(
    key: bytes | None, raw: bytes | None, *, max_bytes: int
) -> UserProfile | ProfileDeleted | Rejection:
    """Validate one ``user.profiles`` record (v1.0 or v2.0): a profile, the deletion of one (a
    tombstone: no value), or a Rejection. The key must be a valid id equal to ``userId``."""
    try:
        user_id = _key_id(key)
        if raw is None:
            return ProfileDeleted(user_id)
        doc = _load(raw, max_bytes)
        version = _version(doc)
        updated_at = _optional(doc, "updatedAt", str)
        if updated_at is not None:
            _timestamp(doc, "updatedAt")
        profile = UserProfile(
            user_id=_required_id(doc, "userId"),
            segment=_required_id(doc, "segment"),
            version=version,
            updated_at=updated_at,
            email=_optional(doc, "email", str),
            profile=_optional(doc, "profile", dict),
        )
        if profile.user_id != user_id:
            raise _Reject(KEY_MISMATCH, f"key {user_id!r} is not the userId {profile.user_id!r}")
        return profile
    except _Reject as exc:
        return exc.rejection


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid id (empty, over 256 UTF-8 bytes, not UTF-8, a control,
    bidirectional control or invisible format character), or None. Any string that passes
    works everywhere: stores, topics, insight ids, URLs."""
    if not value:
        return "is empty"
    if len(value) > MAX_ID_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return f"is longer than {MAX_ID_BYTES} UTF-8 bytes"
    bad = _BAD_ID_CHAR.search(value)
    if bad is None:
        return None
    char = bad.group()
    if "\ud800" <= char <= "\udfff":
        return "is not UTF-8"
    if char <= "\x9f":
        return f"holds a control character (U+{ord(char):04X})"
    if char in _BIDI_CONTROLS:
        return f"holds a bidirectional control character (U+{ord(char):04X})"
    return f"holds an invisible format character (U+{ord(char):04X})"


def _key_id(key: bytes | None) -> str:
    if key is None:
        raise _Reject(BAD_ID, "the record has no key; it must be the userId")
    try:
        text = key.decode()
    except UnicodeDecodeError:
        raise _Reject(BAD_ID, f"key {_show(key)} is not UTF-8") from None
    problem = id_problem(text)
    if problem is not None:
        raise _Reject(BAD_ID, f"key {_show(key)} {problem}")
    return text


def _required_id(doc: dict[str, Any], name: str) -> str:
    value = doc.get(name)
    if value is None:
        raise _Reject(MISSING_FIELD, f"{name} is missing")
    if not isinstance(value, str):
        raise _Reject(BAD_TYPE, f"{name} must be a string, got {type(value).__name__}")
    problem = id_problem(value)
    if problem is not None:
        raise _Reject(BAD_ID, f"{name} {_show(value.encode('utf-8', 'surrogatepass'))} {problem}")
    return value


def _show(raw: bytes, limit: int = 80) -> str:
    """A short, printable rendering of untrusted bytes for a rejection's detail."""
    shown = repr(raw[:limit])
    return shown + ("..." if len(raw) > limit else "")


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
    if _too_deep(doc, MAX_DEPTH):
        raise _Reject(MALFORMED_JSON, f"JSON nested deeper than {MAX_DEPTH} levels")
    return doc


def _too_deep(doc: dict[str, Any], limit: int) -> bool:
    """Whether ``doc`` nests objects/arrays more than ``limit`` levels (the document is level 1).
    Only containers are visited: a flat view costs one pass over its values."""
    level: list[Any] = [doc]
    depth = 1
    while level:
        nested = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
        if nested:
            depth += 1
            if depth > limit:
                return True
        level = nested
    return False


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
