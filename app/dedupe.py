"""Duplicate rule of CONTRACT §4: same ``eventId`` already accepted within the horizon."""

from __future__ import annotations

from app.windows import hour_start


def is_duplicate(already_seen: bool, ts_ms: int, stream_time_ms: int, horizon_ms: int) -> bool:
    """A resent event is a duplicate while its time is within ``horizon`` of stream time.

    Decided from stream time, not from when entries happen to be purged, so a replay after a
    crash decides exactly as the first run did.
    """
    return already_seen and ts_ms > stream_time_ms - horizon_ms


def expiry_hour(stream_time_ms: int, horizon_ms: int) -> int:
    """Seen-event windows starting before this hour can no longer decide anything."""
    return hour_start(stream_time_ms - horizon_ms)
