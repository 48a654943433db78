"""Record times whose instant in UTC lies outside 0001-01-01T00:00:00Z..9999-12-31T23:59:59.999Z
are ``bad_timestamp`` on every input (views' ``timestamp``, profiles' ``updatedAt``, property
events' ``timestamp``), whatever the offset that takes them there; nothing downstream (the
views' lateness, a property's refusal message, the HTTP answers) ever meets one.

The expected instants are worked out with integers from the naive local time and the offset,
not with ``datetime`` arithmetic on aware times, so the rule is not checked against itself.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app import codec
from app.models.events import PropertyEvent, PropertyViewed, Rejection, UserProfile
from app.windows import MAX_MS, MIN_MS, TimeOutOfRange, iso_ms, parse_iso

FIRST_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
LAST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
NOW = 1_795_183_387_120  # 2026-11-20T14:03:07.120Z
TOLERANCE = 300_000
_NAIVE_EPOCH = datetime(1970, 1, 1)
_EARLIEST = datetime(1, 1, 1)
_LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000)


def _ms(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# Local times near both ends of the calendar (where an offset crosses them) and anywhere.
LOCAL = st.one_of(
    st.datetimes(_EARLIEST, datetime(1, 1, 2)),
    st.datetimes(datetime(9999, 12, 30), _LATEST),
    st.datetimes(_EARLIEST, _LATEST),
).map(_ms)
OFFSET_MIN = st.integers(-(23 * 60 + 59), 23 * 60 + 59)  # -23:59 .. +23:59


def stamp(local: datetime, offset_min: int) -> str:
    sign = "-" if offset_min < 0 else "+"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{local.isoformat(timespec='milliseconds')}{sign}{hours:02d}:{minutes:02d}"


def utc_ms(local: datetime, offset_min: int) -> int:
    """The instant named, by integers: local time minus its offset."""
    return (local - _NAIVE_EPOCH) // timedelta(milliseconds=1) - offset_min * 60_000


def in_range(ms: int) -> bool:
    return FIRST_MS <= ms <= LAST_MS


def test_the_range_constants_are_the_calendar_ends():
    assert (MIN_MS, MAX_MS) == (FIRST_MS, LAST_MS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0001-01-01T00:00:00Z", FIRST_MS),
        ("0001-01-01T00:00:00-00:01", FIRST_MS + 60_000),
        ("0001-01-01T23:59:00+23:59", FIRST_MS),
        ("9999-12-31T23:59:59.999Z", LAST_MS),
        ("9999-12-31T23:59:59.999+00:01", LAST_MS - 60_000),
        ("9999-12-31T00:00:59.999-23:59", LAST_MS),
    ],
)
def test_times_just_inside_the_range_parse(text, expected):
    assert parse_iso(text) == expected
    assert parse_iso(iso_ms(expected)) == expected  # and can be written back


@pytest.mark.parametrize(
    "text",
    [
        "0001-01-01T00:00:00+00:01",  # the record: a minute before year 1 in UTC
        "0001-01-01T00:00:00.999+00:01",
        "0001-01-01T23:58:59.999+23:59",
        "9999-12-31T23:59:59.999-00:01",
        "9999-12-31T00:01:00-23:59",
        "9999-12-31T23:59:59.9995Z",  # half a millisecond past the last instant
        "9999-12-31T23:59:59.999001+00:00",
        "0001-01-01T00:00:00+00:00:01",  # one second, in the seconds an offset may carry
    ],
)
def test_times_just_outside_the_range_are_out_of_range(text):
    with pytest.raises(TimeOutOfRange, match="outside"):
        parse_iso(text)


@given(local=LOCAL, offset=OFFSET_MIN)
@example(local=_EARLIEST, offset=1)
@example(local=_EARLIEST, offset=-1)
@example(local=_LATEST, offset=-1)
@example(local=_LATEST, offset=1)
def test_parse_iso_takes_exactly_the_instants_in_range(local, offset):
    expected = utc_ms(local, offset)
    if in_range(expected):
        assert parse_iso(stamp(local, offset)) == expected
    else:
        with pytest.raises(TimeOutOfRange):
            parse_iso(stamp(local, offset))


# --- every input ------------------------------------------------------------------------------
def _view(timestamp: str) -> PropertyViewed | Rejection:
    doc = {"eventId": "e-1", "eventType": "property.viewed", "timestamp": timestamp,
           "propertyId": "prop-1", "userId": "user-1"}
    return codec.decode_view(b"prop-1", orjson.dumps(doc), now_ms=NOW, max_bytes=64 * 1024,
                             future_tolerance_ms=TOLERANCE)


def _property_event(timestamp: str, kind: str) -> PropertyEvent | Rejection:
    data = {"title": "Loft", "city": "Lyon", "price": 1850} if kind == "created" else {"price": 1}
    doc = {"eventId": "e-1", "eventType": f"property.{kind}", "timestamp": timestamp,
           "propertyId": "prop-1", "data": data}
    return codec.decode_property_event(b"prop-1", orjson.dumps(doc), now_ms=NOW,
                                       max_bytes=64 * 1024, future_tolerance_ms=TOLERANCE)


def _profile(updated_at: str) -> UserProfile | Rejection:
    doc = {"userId": "user-1", "segment": "investor", "version": "2.0", "updatedAt": updated_at}
    return codec.decode_profile(b"user-1", orjson.dumps(doc), max_bytes=64 * 1024)


def _expect_event_time(result, expected: int) -> None:
    """In range: the event with that time, or ``future_timestamp`` if it is ahead of NOW."""
    if expected > NOW + TOLERANCE:
        assert isinstance(result, Rejection) and result.reason == "future_timestamp", result
    else:
        assert not isinstance(result, Rejection), result
        assert result.timestamp_ms == expected


@given(local=LOCAL, offset=OFFSET_MIN)
@example(local=_EARLIEST, offset=1)
@example(local=_LATEST, offset=-1)
def test_a_view_out_of_range_is_bad_timestamp(local, offset):
    expected = utc_ms(local, offset)
    result = _view(stamp(local, offset))
    if in_range(expected):
        _expect_event_time(result, expected)
    else:
        assert isinstance(result, Rejection) and result.reason == "bad_timestamp", result


@given(local=LOCAL, offset=OFFSET_MIN, kind=st.sampled_from(["created", "updated", "rented"]))
@example(local=_EARLIEST, offset=1, kind="updated")
@example(local=_EARLIEST, offset=1, kind="created")
def test_a_property_event_out_of_range_is_bad_timestamp(local, offset, kind):
    expected = utc_ms(local, offset)
    result = _property_event(stamp(local, offset), kind)
    if in_range(expected):
        _expect_event_time(result, expected)
    else:
        assert isinstance(result, Rejection) and result.reason == "bad_timestamp", result


@given(local=LOCAL, offset=OFFSET_MIN)
@example(local=_EARLIEST, offset=1)
@example(local=_LATEST, offset=-1)
def test_a_profile_updated_out_of_range_is_bad_timestamp(local, offset):
    text = stamp(local, offset)
    result = _profile(text)
    if in_range(utc_ms(local, offset)):
        assert isinstance(result, UserProfile) and result.updated_at == text, result
    else:
        assert isinstance(result, Rejection) and result.reason == "bad_timestamp", result


@pytest.mark.parametrize("text", ["0000-12-31T23:59:59Z", "10000-01-01T00:00:00Z",
                                  "-0001-01-01T00:00:00Z", "+10000-01-01T00:00:00Z"])
def test_years_beyond_four_digits_are_bad_timestamp_everywhere(text):
    for result in (_view(text), _property_event(text, "created"), _profile(text)):
        assert isinstance(result, Rejection) and result.reason == "bad_timestamp", result
