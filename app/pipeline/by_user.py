"""The views-by-user repartition records, from the views stage to the segment-users stage.

Each commit of a views partition sends, to each repartition partition, one record (or a few,
of at most ``MAX_ENTRIES``) with the distinct ``(userId, week, segment)`` of the batch's
accepted views whose user hashes there: ``[[userId, weekStartMs, segment], ...]`` as JSON,
key ``KEY``. One record per view cost the segment-users stage as much framework work per
view as the views stage itself; a batch's repeats of a user also collapse into one entry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson

KEY = b"users-by-week-segment"
MAX_ENTRIES = 2_000  # ~100 KB per record at most

Entry = tuple[str, int, str]  # userId, week start (ms), segment


def encode(entries: Iterable[Entry]) -> Iterator[bytes]:
    """Record values carrying ``entries``, oldest week first (as the views came, roughly),
    sorted, so that a replayed batch sends the same bytes."""
    ordered = sorted(entries, key=lambda entry: (entry[1], entry[0], entry[2]))
    for start in range(0, len(ordered), MAX_ENTRIES):
        yield orjson.dumps(ordered[start : start + MAX_ENTRIES])


def decode(key: bytes | None, value: bytes | None) -> list[Entry] | None:
    """The entries of a record, or None if it is not one of ours."""
    if key != KEY or value is None:
        return None
    try:
        entries = orjson.loads(value)
        return [(str(user), int(week), str(segment)) for user, week, segment in entries]
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return None
