"""The views-by-user repartition records, from the views stage to the segment-users stage.

Each commit of a views partition sends, to each repartition partition, one record (or a few)
with the distinct ``(userId, week, segment)`` of the batch's accepted views whose user hashes
there: ``[[userId, weekStartMs, segment], ...]`` as JSON, key ``KEY``. One record per view
cost the segment-users stage as much framework work per view as the views stage itself; a
batch's repeats of a user also collapse into one entry.

A record holds at most ``MAX_RECORD_BYTES`` (key and Kafka framing aside), however long the
ids are: the broker refuses a record over the topic's ``max.message.bytes`` (1 MiB by default)
for good, and a transaction holding it could never commit. Entries are sorted and packed
greedily, so a replayed batch sends the same bytes.

An entry too long for a record of its own cannot come from a validated view (ids are at most
256 UTF-8 bytes); should one come anyway, it is left out (``Packed.dropped``) for the caller to
log and count: one user missing from one week's unique-user count is better than a partition
that never commits again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

KEY = b"users-by-week-segment"
# A quarter of the broker's default limit: far from it, half the transactional writer's
# batch, and within one fetch of the segment-users stage (MAX_FETCH_BYTES).
MAX_RECORD_BYTES = 256 * 1024

Entry = tuple[str, int, str]  # userId, week start (ms), segment


@dataclass(frozen=True, slots=True)
class Packed:
    records: list[bytes]
    dropped: list[Entry]


def pack(entries: Iterable[Entry], max_bytes: int = MAX_RECORD_BYTES) -> Packed:
    """Record values carrying ``entries``, each at most ``max_bytes``, oldest week first (as
    the views came, roughly) and sorted; entries that cannot fit a record alone are dropped.

    A record is ``[`` + the entries' JSON joined by ``,`` + ``]``, byte for byte what
    ``orjson.dumps`` makes of the list, so each entry's size is known before it is added.
    """
    ordered = sorted(entries, key=lambda entry: (entry[1], entry[0], entry[2]))
    records: list[bytes] = []
    dropped: list[Entry] = []
    parts: list[bytes] = []
    size = 2  # the brackets
    for entry in ordered:
        part = orjson.dumps(entry)
        if len(part) + 2 > max_bytes:
            dropped.append(entry)
            continue
        added = len(part) + (1 if parts else 0)  # the comma before it
        if size + added > max_bytes:
            records.append(b"[" + b",".join(parts) + b"]")
            parts, size, added = [], 2, len(part)
        parts.append(part)
        size += added
    if parts:
        records.append(b"[" + b",".join(parts) + b"]")
    return Packed(records, dropped)


def encode(entries: Iterable[Entry], max_bytes: int = MAX_RECORD_BYTES) -> list[bytes]:
    """The record values of ``pack``, for callers that know their entries fit."""
    return pack(entries, max_bytes).records


def decode(key: bytes | None, value: bytes | None) -> list[Entry] | None:
    """The entries of a record, or None if it is not one of ours."""
    if key != KEY or value is None:
        return None
    try:
        entries = orjson.loads(value)
        return [(str(user), int(week), str(segment)) for user, week, segment in entries]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
