"""Duplicate rule of CONTRACT §4: same ``eventId`` already accepted within the horizon."""

from __future__ import annotations


def is_duplicate(accepted_at_ms: int | None, stream_time_ms: int, horizon_ms: int) -> bool:
    """A view is a duplicate when a view with its eventId was accepted with an event time
    within ``horizon`` of the stream time.

    Decided from stream time, not from when entries happen to be purged, so a replay after a
    crash decides exactly as the first run did.
    """
    return accepted_at_ms is not None and accepted_at_ms > stream_time_ms - horizon_ms


def purge_due(stream_time_ms: int, last_purge_ms: int, horizon_ms: int) -> bool:
    """Purge forgotten ids every quarter horizon of stream time (so entries live < 1.25 x)."""
    return stream_time_ms - last_purge_ms >= horizon_ms // 4
