"""Event-time windows in UTC, as epoch milliseconds: hours, ISO weeks, lateness.

Pure functions: the pipeline and the generator call these; the tests' oracle works the same
windows out by the calendar on its own, and a unit test holds the two to the same answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; the first Monday 00:00 UTC after the epoch.
_FIRST_MONDAY_MS = 4 * DAY_MS
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
# The instants iso_ms can write: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999Z.
_FIRST = datetime(1, 1, 1, tzinfo=UTC)
_LAST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
MIN_MS = (_FIRST - _EPOCH) // _ONE_MS
MAX_MS = (_LAST - _EPOCH) // _ONE_MS
TIME_RANGE = "0001-01-01T00:00:00Z..9999-12-31T23:59:59.999Z"


class TimeOutOfRange(ValueError):
    """A well-formed time whose instant in UTC is outside ``TIME_RANGE``."""


def hour_start(ts_ms: int) -> int:
    """Start of the hourly window ``[HH:00, HH+1:00)`` holding ``ts_ms``."""
    return ts_ms - ts_ms % HOUR_MS


def week_start(ts_ms: int) -> int:
    """Start (Monday 00:00 UTC) of the ISO week holding ``ts_ms``."""
    return ts_ms - (ts_ms - _FIRST_MONDAY_MS) % WEEK_MS


def is_late(window_end_ms: int, grace_ms: int, stream_time_ms: int) -> bool:
    """A view is late for a window once that window's end + grace <= stream time."""
    return window_end_ms + grace_ms <= stream_time_ms


def parse_iso(text: str) -> int:
    """ISO-8601 with an explicit offset or ``Z`` -> epoch ms. Raises ValueError otherwise,
    and TimeOutOfRange when the instant in UTC is outside ``TIME_RANGE``.

    The one ISO parser: records' times go through it as they are; HTTP query times are
    first read as UTC when they have no offset (``app.web.params``). The range check is here,
    on the exact instant (the offset applied, before the cut to milliseconds), so every time
    that passes can be written back by ``iso_ms``: ``0001-01-01T00:00:00+00:01`` is a valid
    date in its own offset but a minute before year 1 in UTC, and nothing downstream (a
    refusal message, a property's ``createdAt``) may meet it.
    """
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    # Aware datetimes compare by their UTC instants, without building one (no overflow).
    if not _FIRST <= moment <= _LAST:
        raise TimeOutOfRange(f"{text!r} is outside {TIME_RANGE} in UTC")
    return (moment - _EPOCH) // _ONE_MS


def iso_ms(ts_ms: int) -> str:
    """Epoch ms -> ``2026-11-20T14:00:00Z`` (milliseconds only when not zero).

    Integer arithmetic, so the text is exact and the same on every platform; the year has
    four digits (``0001``), as ISO-8601 and ``parse_iso`` want. Raises ValueError outside
    ``[MIN_MS, MAX_MS]``: callers that take times from outside check that range first.
    """
    if not MIN_MS <= ts_ms <= MAX_MS:
        raise ValueError(f"{ts_ms} ms is outside the years 0001-9999")
    moment = (_EPOCH + ts_ms * _ONE_MS).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds" if ts_ms % 1000 else "seconds") + "Z"
