"""A dead-letter copy that fits its topic: cut to the record limit when it does not.

A rejected record is copied with its own key and value bytes, but those are the bytes after the
client decompressed its batch: a gzip record of a few KiB on the wire can hold many MiB. Such a
copy would be refused by the producer (and the broker) for good, and the partition could never
commit again. So a copy whose key, value, headers and record framing pass the dead-letter
topic's ``max.message.bytes`` is cut to fit: its value to the longest prefix that fits (its key
too, only if the key alone does not fit), with the headers ``dlq.truncated: true`` and
``dlq.original.bytes`` (the original value's size; ``dlq.original.key.bytes`` when the key was
cut). A copy that fits is left exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.models.events import Rejection

TRUNCATED = "dlq.truncated"
ORIGINAL_BYTES = "dlq.original.bytes"
ORIGINAL_KEY_BYTES = "dlq.original.key.bytes"
# A record batch's header (61 bytes) and the most a record's own framing takes (length,
# attributes, timestamp and offset deltas: 21 bytes), as the producer counts them
# (aiokafka's DefaultRecordBatchBuilder.estimate_size_in_bytes) before it sends a record alone.
BATCH_OVERHEAD = 61 + 21

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class DeadLetterRoute:
    """Where a stage's rejected records go: copies of records of ``origin`` to ``topic``, each
    at most ``limit`` bytes (the dead-letter topic's ``max.message.bytes``)."""

    origin: str
    topic: str
    limit: int


def dead_letter(
    route: DeadLetterRoute,
    rejection: Rejection,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
) -> tuple[bytes | None, bytes | None, Headers]:
    """The dead-letter copy of the record at ``origin[partition]@offset``: its own key and
    value with the rejection's headers, cut to fit the route's limit (``fit_dead_letter``)."""
    headers = rejection.dlq_headers(route.origin, partition, offset)
    return fit_dead_letter(key, value, headers, route.limit)


def record_size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    """The most a record with these bytes takes in a batch of its own (Kafka's v2 format)."""
    size = BATCH_OVERHEAD + _field(key) + _field(value) + _varint_size(len(headers))
    for name, data in headers:
        size += _field(name.encode()) + _field(data)
    return size


def fit_dead_letter(
    key: bytes | None, value: bytes | None, headers: Headers, limit: int
) -> tuple[bytes | None, bytes | None, Headers]:
    """``(key, value, headers)`` unchanged if ``record_size`` is at most ``limit``; else the
    key and value cut to prefixes that fit, with the truncation headers added. ``limit`` must
    leave room for the headers alone (the dead-letter topic's limit is at least 64 KiB)."""
    if record_size(key, value, headers) <= limit:
        return key, value, headers
    headers = [*headers, (TRUNCATED, b"true"), (ORIGINAL_BYTES, str(len(value or b"")).encode())]
    room = limit - record_size(key, b"", headers) + _field(b"")
    if room < 1 and key:
        headers.append((ORIGINAL_KEY_BYTES, str(len(key)).encode()))
        key = key[: _longest(limit - record_size(b"", b"", headers) + _field(b""))]
        room = limit - record_size(key, b"", headers) + _field(b"")
    if value is not None:
        value = value[: _longest(room)]
    if record_size(key, value, headers) > limit:
        raise ValueError(f"a dead-letter record cannot fit in {limit} bytes: its headers alone pass it")
    return key, value, headers


def _longest(room: int) -> int:
    """The longest byte string whose length varint and bytes take at most ``room`` bytes."""
    if room < 1:
        return 0
    length = room - _varint_size(room)
    while length + 1 + _varint_size(length + 1) <= room:
        length += 1
    return length


def _field(data: bytes | None) -> int:
    """A length-prefixed field: the length as a zigzag varint (-1 for null), then the bytes."""
    return 1 if data is None else _varint_size(len(data)) + len(data)


def _varint_size(n: int) -> int:
    """Bytes of ``n`` as a zigzag varint (``n`` from 0)."""
    zigzag, size = n << 1, 1
    while zigzag > 0x7F:
        zigzag >>= 7
        size += 1
    return size
