"""HTTP parameters -> values, or BadRequest (answered 400 with its message).

Pure functions of text: every parameter a client controls (query values and path ids) goes
through one of these, and none raises anything but BadRequest, whatever the text, so a bad
request can never become a 500.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from app.codec import id_problem
from app.models.insights import (
    PROPERTY_HOURLY_SPIKE,
    RENTED_PROPERTY_DEMAND,
    SEGMENT_PROPERTY_TREND,
)
from app.windows import (
    HOUR_MS,
    MAX_MS,
    MIN_MS,
    WEEK_MS,
    TimeOutOfRange,
    hour_start,
    parse_iso,
    week_start,
)

T = TypeVar("T")

MAX_HISTORY_HOURS = 31 * 24
INSIGHT_TYPES = (PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND, RENTED_PROPERTY_DEMAND)
_SPACE_OFFSET = re.compile(r"(?<=\d) (\d\d(?::?\d\d)?)$")
REQUIRED: Any = object()
_RANGE = "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z"


class BadRequest(Exception):
    """A parameter is missing or wrong: answered 400 with its message."""


def param(
    query: Mapping[str, str], name: str, parse: Callable[[str], T], default: Any = REQUIRED
) -> T:
    """A parsed query parameter; BadRequest when it is missing (and has no default) or wrong."""
    text = query.get(name)
    if text is None or text == "":
        if default is not REQUIRED:
            return default
        raise BadRequest(f"query parameter {name!r} is required")
    try:
        return parse(text)
    except BadRequest as exc:
        raise BadRequest(f"{name}: {exc}") from None


def path_id(raw: str) -> str:
    """A path segment as the client sent it (percent-encoded) -> the id it names.

    The id rules are the codec's (``bad_id``): not empty, at most 256 UTF-8 bytes, valid
    UTF-8, no control character. The segment is decoded here from its raw form because the
    web framework keeps an invalid escape such as ``%ff`` as the text ``%ff``, which would
    silently name another id.
    """
    try:
        text = unquote_to_bytes(raw).decode("utf-8")
    except (TypeError, ValueError, UnicodeError):  # lone surrogates cannot be raw bytes
        raise BadRequest("is not UTF-8") from None
    problem = id_problem(text)
    if problem is not None:
        raise BadRequest(problem)
    return text


def parse_utc(text: str) -> int:
    """An ISO-8601 instant in a query -> epoch ms; no offset means UTC. A '+' sent unescaped
    arrives as a space. Only instants an answer can write back (years 0001-9999) are accepted."""
    try:
        ts = parse_iso(_as_utc(_SPACE_OFFSET.sub(r"+\1", text.strip())))
    except TimeOutOfRange:
        raise BadRequest(f"{text!r} is not {_RANGE}") from None
    except (ValueError, OverflowError):
        raise BadRequest(f"{text!r} is not an ISO-8601 time such as 2026-11-20T14:00:00Z") from None
    if not MIN_MS <= ts <= MAX_MS:
        raise BadRequest(f"{text!r} is not {_RANGE}")
    return ts


def _as_utc(text: str) -> str:
    """``text`` with ``Z`` appended when it has no offset; a final ``z`` (allowed by ISO-8601,
    refused by ``datetime.fromisoformat``) written ``Z``."""
    if text.endswith("z"):
        return text[:-1] + "Z"
    if text.endswith("Z") or "+" in text[10:] or "-" in text[10:]:
        return text
    return text + "Z"


def parse_hour(text: str) -> int:
    """An instant -> the start of its hour, whose end must also be writable."""
    hour = hour_start(parse_utc(text))
    _check_window(hour, HOUR_MS)
    return hour


def history_hours(start_ms: int, end_ms: int) -> range:
    """The hours ``[hour_start(start), end)`` of a history request, at most 31 days."""
    start = hour_start(start_ms)
    if end_ms <= start_ms:
        raise BadRequest("'to' must be after 'from'")
    hours = range(start, end_ms, HOUR_MS)
    if len(hours) > MAX_HISTORY_HOURS:
        raise BadRequest(f"at most {MAX_HISTORY_HOURS} hours per request")
    _check_window(hours[-1], HOUR_MS)
    return hours


def parse_week_start(text: str) -> int:
    """A week's Monday as ``2026-11-23`` or ``2026-11-23T00:00:00Z`` -> epoch ms (a path
    segment: no '+' turned into a space there)."""
    try:
        week = parse_iso(_as_utc(text if "T" in text else text + "T00:00:00Z"))
    except TimeOutOfRange:
        raise BadRequest(f"{text!r} is not {_RANGE}") from None
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{text!r} is not a date such as 2026-11-23 or 2026-11-23T00:00:00Z"
        ) from None
    if week_start(week) != week:
        raise BadRequest(f"{text!r} is not a Monday 00:00 UTC")
    if not MIN_MS <= week:
        raise BadRequest(f"{text!r} is not {_RANGE}")
    _check_window(week, WEEK_MS)
    return week


def limit_parser(maximum: int) -> Callable[[str], int]:
    """A parser of ``limit``: a decimal integer in ``[1, maximum]``."""

    def parse_limit(text: str) -> int:
        digits = text.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 9:
            raise BadRequest(f"must be an integer between 1 and {maximum}")
        value = int(digits)
        if not 1 <= value <= maximum:
            raise BadRequest(f"must be between 1 and {maximum}")
        return value

    return parse_limit


MAX_VERSION = 10**12


def parse_version(text: str) -> int:
    """A property version in a query (``afterVersion``): a decimal integer from 0."""
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 13:
        raise BadRequest(f"must be an integer between 0 and {MAX_VERSION}")
    value = int(digits)
    if value > MAX_VERSION:
        raise BadRequest(f"must be between 0 and {MAX_VERSION}")
    return value


def parse_insight_type(text: str) -> str:
    if text not in INSIGHT_TYPES:
        raise BadRequest(f"must be one of {', '.join(INSIGHT_TYPES)}")
    return text


def _check_window(start: int, length: int) -> None:
    if start + length > MAX_MS:
        raise BadRequest("the window would end after 9999-12-31T23:59:59.999Z")
