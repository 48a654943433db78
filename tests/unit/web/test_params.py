"""HTTP parameters: every text a client can send becomes a value or a BadRequest (400), never
another exception; times near the ends of the calendar and hostile ids included."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.web.params import (
    INSIGHT_TYPES,
    MAX_HISTORY_HOURS,
    BadRequest,
    history_hours,
    limit_parser,
    param,
    parse_hour,
    parse_insight_type,
    parse_utc,
    parse_week_start,
    path_id,
)
from app.windows import HOUR_MS, WEEK_MS, iso_ms

# Any code point, lone surrogates included (what the server makes of bytes that are not UTF-8).
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
# Text shaped like times, so the parsers get past the first character often.
TIME_LIKE = st.from_regex(
    r"\A[+-]?\d{1,5}-\d{1,2}-\d{1,2}([T ]\d{1,2}(:\d{1,2}(:\d{1,2}(\.\d{1,7})?)?)?)?"
    r"([zZ]|[+ -]\d{2}(:?\d{2})?)?\Z"
)
TIMES = ANY_TEXT | TIME_LIKE
# The characters no id may hold (docs/behaviour.md, bad_id), besides lone surrogates.
NOT_IN_IDS = [chr(c) for c in [*range(0x20), *range(0x7F, 0xA0), 0x61C, *range(0x200B, 0x2010),
                               *range(0x202A, 0x202F), 0x2060, *range(0x2066, 0x206A), 0xFEFF]]


def returns_or_400(parse, text):  # noqa: ANN001
    try:
        return parse(text)
    except BadRequest as exc:
        assert str(exc), "a 400 says why"
        return None


@given(TIMES)
@example("9999-12-31T23:00:00Z")
@example("9999-12-31T23:59:59.999+00:00")
@example("0001-01-01T00:00:00+01:00")
@example("0001-01-01T00:30:00+01:00")
@example("0000-01-01T00:00:00Z")
@example("10000-01-01T00:00:00Z")
def test_hour_is_an_hour_whose_window_can_be_written_or_400(text):
    hour = returns_or_400(parse_hour, text)
    if hour is not None:
        assert hour % HOUR_MS == 0
        iso_ms(hour), iso_ms(hour + HOUR_MS)  # the answer's windowStart and windowEnd


@given(TIMES)
def test_from_and_to_are_instants_that_can_be_written_or_400(text):
    ts = returns_or_400(parse_utc, text)
    if ts is not None:
        assert parse_utc(iso_ms(ts)) == ts


@given(TIMES, TIMES)
@example("9999-12-31T22:00:00Z", "9999-12-31T23:59:59Z")
@example("0001-01-01T00:00:00Z", "0001-01-01T05:00:00Z")
def test_history_is_a_month_at_most_of_writable_hours_or_400(start_text, end_text):
    try:
        hours = history_hours(parse_utc(start_text), parse_utc(end_text))
    except BadRequest:
        return
    assert 1 <= len(hours) <= MAX_HISTORY_HOURS
    iso_ms(hours[0]), iso_ms(hours[-1] + HOUR_MS)


@given(TIMES | st.dates().map(str))
@example("9999-12-27")
@example("9999-12-20")
@example("0001-01-01")
@example("0001-01-01T00:00:00+01:00")
def test_week_start_is_a_monday_whose_week_can_be_written_or_400(text):
    week = returns_or_400(parse_week_start, text)
    if week is not None:
        assert iso_ms(week).endswith("T00:00:00Z")
        iso_ms(week + WEEK_MS)


@given(ANY_TEXT | st.integers().map(str))
@example("٣")  # a digit, but not an ASCII one
@example("9" * 5000)
def test_limit_is_an_integer_in_range_or_400(text):
    limit = returns_or_400(limit_parser(500), text)
    assert limit is None or 1 <= limit <= 500


@given(ANY_TEXT)
def test_type_is_an_insight_type_or_400(text):
    kind = returns_or_400(parse_insight_type, text)
    assert kind is None or kind in INSIGHT_TYPES


@given(ANY_TEXT)
@example("%00%ff")
@example("%")
@example("%zz")
@example("\udcff")
def test_any_raw_path_segment_is_a_valid_id_or_400(raw):
    ident = returns_or_400(path_id, raw)
    if ident is not None:
        encoded = ident.encode()
        assert 1 <= len(encoded) <= 256
        assert not any(c in NOT_IN_IDS for c in ident)


@given(st.text(st.characters(codec="utf-8", exclude_characters=NOT_IN_IDS),
               min_size=1).filter(lambda s: len(s.encode()) <= 256))
@example("a:b/c d%25 日本")
@example("..")
def test_every_id_the_contract_allows_comes_through_its_encoding(ident):
    assert path_id(quote(ident, safe="")) == ident


@pytest.mark.parametrize(
    "raw, why",
    [
        ("", "empty"),
        ("%00%ff", "not UTF-8"),
        ("a%ffb", "not UTF-8"),
        ("a%00b", "control character"),
        ("tab%09", "control character"),
        ("del%7F", "control character"),
        ("x" * 257, "longer than 256"),
        ("%C3%A9" * 129, "longer than 256"),  # 258 bytes, 129 characters
    ],
)
def test_bad_ids_say_why(raw, why):
    with pytest.raises(BadRequest, match=why):
        path_id(raw)


def test_ids_up_to_256_bytes_and_any_printable_text_pass():
    assert path_id("x" * 256) == "x" * 256
    assert path_id("a:b%2Fc%20d%25") == "a:b/c d%"
    assert path_id("%E6%97%A5%E6%9C%AC") == "日本"
    assert path_id("+") == "+"  # a plus in a path is a plus


@pytest.mark.parametrize(
    "parse, text",
    [
        (parse_hour, "9999-12-31T23:00:00Z"),  # its window would end in the year 10000
        (parse_hour, "0001-01-01T00:00:00+01:00"),  # 0000-12-31T23:00Z
        (parse_week_start, "9999-12-27"),  # a Monday whose week ends in 10000
        (parse_utc, "0001-01-01T00:59:59+01:00"),
    ],
)
def test_times_at_the_ends_of_the_calendar_are_400(parse, text):
    with pytest.raises(BadRequest, match="9999-12-31"):
        parse(text)


def test_the_last_writable_hour_and_week_are_accepted():
    assert iso_ms(parse_hour("9999-12-31T22:30:00Z")) == "9999-12-31T22:00:00Z"
    assert iso_ms(parse_week_start("9999-12-20")) == "9999-12-20T00:00:00Z"
    assert iso_ms(parse_hour("0001-01-01T00:00:00Z")) == "0001-01-01T00:00:00Z"


def test_param_names_the_parameter_and_knows_required_from_default():
    assert param({"hour": "2026-11-20T14:03:00Z"}, "hour", parse_hour) == 1_795_183_200_000
    with pytest.raises(BadRequest, match="'hour' is required"):
        param({}, "hour", parse_hour)
    with pytest.raises(BadRequest, match="^hour: "):
        param({"hour": "soon"}, "hour", parse_hour)
    assert param({"type": ""}, "type", parse_insight_type, default=None) is None
    assert param({}, "limit", limit_parser(50), default=10) == 10


# -- query times read as UTC (literal epoch ms, checked once against the calendar) --------
FRI_2026_11_20_T14 = 1_795_183_200_000
MON_2026_11_23 = 1_795_392_000_000
MON_2026_12_28 = 1_798_416_000_000
MON_2028_02_28 = 1_835_308_800_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T14:00:00Z", FRI_2026_11_20_T14),
        ("2026-11-20T14:37:12.500Z", FRI_2026_11_20_T14),
        ("2026-11-20T14:37:12", FRI_2026_11_20_T14),  # a query without offset is UTC
        ("2026-11-20T16:37:12+02:00", FRI_2026_11_20_T14),
        ("2026-11-20T09:59:59-05:00", FRI_2026_11_20_T14),
        ("2026-11-20T16:37:12 02:00", FRI_2026_11_20_T14),  # '+' unescaped: a space
        ("2026-11-20T16:37:12 0200", FRI_2026_11_20_T14),
        (" 2026-11-20T14:37:12Z ", FRI_2026_11_20_T14),
    ],
)
def test_parse_hour(text, expected):
    assert parse_hour(text) == expected


@pytest.mark.parametrize("text", ["not-an-hour", "2026-11-20T25:00:00Z", "2026-11-20T14:00:00 2"])
def test_parse_hour_rejects_garbage(text):
    with pytest.raises(BadRequest, match="is not an ISO-8601 time"):
        parse_hour(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23", MON_2026_11_23),
        ("2026-11-23T00:00:00Z", MON_2026_11_23),
        ("2026-11-23T00:00:00", MON_2026_11_23),
        ("2026-11-23T02:00:00+02:00", MON_2026_11_23),
        ("2026-12-28", MON_2026_12_28),
        ("2028-02-28", MON_2028_02_28),
    ],
)
def test_parse_week_start(text, expected):
    assert parse_week_start(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24",  # a Tuesday
        "2026-11-22",  # a Sunday
        "2028-02-29",  # leap day, a Tuesday
        "2026-11-23T01:00:00Z",  # a Monday, but not 00:00
        "2026-11-23T00:00:00+01:00",  # Sunday 23:00 UTC
        "2026-11-23T00:00:00.001Z",
    ],
)
def test_parse_week_start_refuses_anything_but_monday_midnight_utc(text):
    with pytest.raises(BadRequest, match="is not a Monday 00:00 UTC"):
        parse_week_start(text)


@pytest.mark.parametrize("text", ["week 48", "2026-11-23T00:00:00 00:00", " 2026-11-23"])
def test_parse_week_start_refuses_what_is_not_a_date(text):
    # a path segment: no '+' arrives as a space there, and nothing is stripped
    with pytest.raises(BadRequest, match="is not a date such as"):
        parse_week_start(text)


@pytest.mark.parametrize(
    ("fn", "text", "expected"),
    [
        (parse_hour, "2026-11-20T14:37:12z", FRI_2026_11_20_T14),
        (parse_week_start, "2026-11-23T00:00:00z", MON_2026_11_23),
    ],
)
def test_query_times_accept_a_lowercase_z(fn, text, expected):
    # ISO-8601 / RFC 3339 allow "z"; the query helpers treat it as explicit UTC.
    assert fn(text) == expected
