"""Event-time windows: hours, ISO weeks (Monday 00:00 UTC), lateness, ISO parsing/formatting
(query times read as UTC are in ``tests/unit/web/test_params.py``).

Expected epoch milliseconds are literals (checked once against the calendar), so a wrong
window function cannot agree with itself.
"""

from __future__ import annotations

import pytest

from app.windows import (
    DAY_MS,
    HOUR_MS,
    WEEK_MS,
    hour_start,
    is_late,
    iso_ms,
    parse_iso,
    week_start,
)

# 2026-11-20 is a Friday; ISO week 47 of 2026 starts Monday 2026-11-16.
FRI_2026_11_20_T14_03_07_120 = 1_795_183_387_120
FRI_2026_11_20_T14 = 1_795_183_200_000
MON_2026_11_16 = 1_794_787_200_000
SUN_2026_11_22_T23_59_59_999 = 1_795_391_999_999
MON_2026_11_23 = 1_795_392_000_000
THU_2026_12_31_T12 = 1_798_718_400_000
MON_2026_12_28 = 1_798_416_000_000
SUN_2027_01_03_T23_59_59_999 = 1_799_020_799_999
MON_2027_01_04 = 1_799_020_800_000
TUE_2028_02_29_T23_59_59_999 = 1_835_481_599_999  # leap day
TUE_2028_02_29_T23 = 1_835_478_000_000
MON_2028_02_28 = 1_835_308_800_000


def test_units():
    assert HOUR_MS == 3_600_000
    assert DAY_MS == 86_400_000
    assert WEEK_MS == 604_800_000


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (FRI_2026_11_20_T14_03_07_120, FRI_2026_11_20_T14),
        (FRI_2026_11_20_T14, FRI_2026_11_20_T14),  # exactly on the hour
        (FRI_2026_11_20_T14 - 1, FRI_2026_11_20_T14 - HOUR_MS),  # 13:59:59.999
        (SUN_2026_11_22_T23_59_59_999, MON_2026_11_23 - HOUR_MS),
        (TUE_2028_02_29_T23_59_59_999, TUE_2028_02_29_T23),
        (0, 0),
    ],
)
def test_hour_start(ts, expected):
    assert hour_start(ts) == expected


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (FRI_2026_11_20_T14_03_07_120, MON_2026_11_16),
        (MON_2026_11_16, MON_2026_11_16),  # Monday 00:00 starts its own week
        (MON_2026_11_16 - 1, MON_2026_11_16 - WEEK_MS),  # Sunday 23:59:59.999 before it
        (SUN_2026_11_22_T23_59_59_999, MON_2026_11_16),
        (MON_2026_11_23, MON_2026_11_23),
        (MON_2026_11_23 + 1, MON_2026_11_23),
        # year boundary: Thursday 2026-12-31 is in the week of Monday 2026-12-28 (ISO 2026-W53)
        (THU_2026_12_31_T12, MON_2026_12_28),
        (SUN_2027_01_03_T23_59_59_999, MON_2026_12_28),
        (MON_2027_01_04, MON_2027_01_04),
        # leap day 2028-02-29 is a Tuesday
        (TUE_2028_02_29_T23_59_59_999, MON_2028_02_28),
        # 1970-01-01 was a Thursday: the first Monday after the epoch is 1970-01-05
        (0, -3 * DAY_MS),
        (4 * DAY_MS, 4 * DAY_MS),
    ],
)
def test_week_start(ts, expected):
    assert week_start(ts) == expected


def test_late_exactly_when_end_plus_grace_equals_stream_time():
    end = FRI_2026_11_20_T14 + HOUR_MS
    grace = 15 * 60 * 1000
    assert is_late(end, grace, end + grace) is True
    assert is_late(end, grace, end + grace - 1) is False
    assert is_late(end, grace, end + grace + 1) is True
    assert is_late(end, 0, end) is True
    assert is_late(end, 0, end - 1) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T14:03:07.120Z", FRI_2026_11_20_T14_03_07_120),
        ("2026-11-20T16:03:07.120+02:00", FRI_2026_11_20_T14_03_07_120),
        ("2026-11-20T09:03:07.120-05:00", FRI_2026_11_20_T14_03_07_120),
        ("2026-11-20T14:03:07.120+00:00", FRI_2026_11_20_T14_03_07_120),
        ("2026-11-20T14:00:00Z", FRI_2026_11_20_T14),
        # an offset that moves the instant into the previous UTC day / week
        ("2026-11-23T01:00:00+02:00", MON_2026_11_23 - HOUR_MS),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_parse_iso(text, expected):
    assert parse_iso(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-20T14:03:07.120",  # naive: no offset
        "2026-11-20T14:03:07",
        "2026-11-20",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "",
    ],
)
def test_parse_iso_rejects_naive_and_invalid(text):
    with pytest.raises(ValueError):
        parse_iso(text)


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (FRI_2026_11_20_T14, "2026-11-20T14:00:00Z"),
        (FRI_2026_11_20_T14_03_07_120, "2026-11-20T14:03:07.120Z"),
        (FRI_2026_11_20_T14 + 1, "2026-11-20T14:00:00.001Z"),
        (SUN_2026_11_22_T23_59_59_999, "2026-11-22T23:59:59.999Z"),
        (TUE_2028_02_29_T23, "2028-02-29T23:00:00Z"),
        (0, "1970-01-01T00:00:00Z"),
    ],
)
def test_iso_ms(ts, expected):
    assert iso_ms(ts) == expected


@pytest.mark.parametrize(
    "ts", [FRI_2026_11_20_T14_03_07_120, SUN_2026_11_22_T23_59_59_999, MON_2027_01_04 + 999]
)
def test_iso_ms_round_trips_through_parse_iso(ts):
    assert parse_iso(iso_ms(ts)) == ts
