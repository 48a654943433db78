"""Key layout: an injective, order-preserving encoding of (family, window, parts) for every str.

Ids are whatever producers send, so the properties are checked for arbitrary text, with a
small alphabet of the awkward characters (0x00, 0x01, the old 0x1F separator, U+00FF) where
collisions and prefix relations must be frequent for a test to mean anything.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

import app.tables
from app.engine.store import CHECKPOINT_KEY
from app.tables.keys import (
    META,
    MalformedKey,
    WindowKey,
    encode_text,
    family_range,
    meta_key,
    plain_key,
    prefix_range,
    split_key,
    window_key,
    window_prefix,
)

HOUR_14 = 1_795_183_200_000  # 2026-11-20T14:00:00Z
INT64 = st.integers(-(2**63), 2**63 - 1)
FAMILIES = st.sampled_from(["h", "hu", "w", "ws", "su", "sc", "e", "m", "views", "users"])
AWKWARD = st.text(alphabet="a\x00\x01\x1f\xff\u0100", max_size=3)
IDS = st.one_of(st.text(), AWKWARD)
PARTS = st.lists(IDS, max_size=4).map(tuple)
SMALL_PARTS = st.lists(AWKWARD, max_size=3).map(tuple)
WINDOWS = st.one_of(INT64, st.sampled_from([0, 1, -1, HOUR_14, 2**63 - 1, -(2**63)]))


def within(key: bytes, bounds: tuple[bytes, bytes]) -> bool:
    start, end = bounds
    return start <= key < end


def cmp(a, b) -> int:  # noqa: ANN001
    return (a > b) - (a < b)


# -- exact layout (what is on disk and in the changelogs) ---------------------------------


def test_window_key_layout():
    assert window_key("h", HOUR_14, "prop-1") == (
        b"h\x00\x01" + (HOUR_14 + 2**63).to_bytes(8, "big") + b"prop-1\x00\x01"
    )
    assert window_key("hu", 0, "p", "a\x00b") == (
        b"hu\x00\x01\x80\x00\x00\x00\x00\x00\x00\x00p\x00\x01a\x00\xffb\x00\x01"
    )
    assert plain_key("e", "ev-1") == b"e\x00\x01ev-1\x00\x01"
    assert meta_key("applied") == b"m\x00\x01applied\x00\x01"


def test_lone_surrogates_and_nul_round_trip():
    for text in ["\ud800", "\udfff\ud83d", "\x00", "", "\x00\x01", "a\x1fb"]:
        assert split_key(window_key("w", -1, text, text)) == WindowKey("w", -1, (text, text))


def test_families_must_be_lowercase_letters():
    for bad in ["", "H", "h\x00", "h\x1f", "h1", "é"]:
        with pytest.raises(ValueError):
            window_key(bad, 0)
        with pytest.raises(ValueError):
            plain_key(bad)


def test_window_outside_64_bits_is_a_value_error():
    with pytest.raises(ValueError):
        window_key("h", 2**63)
    with pytest.raises(ValueError):
        window_key("h", -(2**63) - 1)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"h",  # no terminator
        b"h\x00\x01\x00",  # window too short
        b"H\x00\x01" + bytes(8),  # not a family name
        b"h\x00\x01" + bytes(8) + b"p",  # unterminated part
        b"h\x00\x01" + bytes(8) + b"p\x00q\x00\x01",  # unescaped 0x00
        b"h\x00\x01" + bytes(8) + b"\xff\x00\x01",  # not UTF-8
        b"h\x1f0000000000000\x1fp",  # the old layout
    ],
)
def test_split_key_rejects_what_window_key_never_writes(raw):
    with pytest.raises(MalformedKey):
        split_key(raw)


# -- properties ----------------------------------------------------------------------------


@given(FAMILIES, WINDOWS, PARTS)
def test_split_key_inverts_window_key(family, window, parts):
    assert split_key(window_key(family, window, *parts)) == (family, window, parts)


@given(FAMILIES, SMALL_PARTS, FAMILIES, SMALL_PARTS)
def test_distinct_plain_tuples_give_distinct_keys(f1, p1, f2, p2):
    assert (plain_key(f1, *p1) == plain_key(f2, *p2)) == ((f1, p1) == (f2, p2))


@given(st.binary(max_size=40))
def test_split_key_accepts_only_what_window_key_writes(raw):
    """Decoding is exact: bytes either fail or are the encoding of what they decode to."""
    try:
        family, window, parts = split_key(raw)
    except MalformedKey:
        return
    assert window_key(family, window, *parts) == raw


@given(FAMILIES, WINDOWS, SMALL_PARTS, FAMILIES, WINDOWS, SMALL_PARTS)
def test_distinct_tuples_give_distinct_keys(f1, w1, p1, f2, w2, p2):
    same_key = window_key(f1, w1, *p1) == window_key(f2, w2, *p2)
    assert same_key == ((f1, w1, p1) == (f2, w2, p2))
    assert (plain_key(f1, *p1) == plain_key(f2, *p2)) == ((f1, p1) == (f2, p2))


@given(st.sampled_from([0, 1, HOUR_14]), SMALL_PARTS, SMALL_PARTS)
def test_distinct_tuples_with_a_shared_window_give_distinct_keys(window, p1, p2):
    """Frequent near-collisions: the same window and parts drawn from the awkward characters."""
    assert (window_key("hu", window, *p1) == window_key("hu", window, *p2)) == (p1 == p2)


@given(WINDOWS, SMALL_PARTS, WINDOWS, SMALL_PARTS)
def test_byte_order_is_the_order_of_window_then_parts(w1, p1, w2, p2):
    assert cmp(window_key("w", w1, *p1), window_key("w", w2, *p2)) == cmp((w1, p1), (w2, p2))


@given(IDS, IDS)
def test_text_byte_order_is_code_point_order(a, b):
    assert cmp(encode_text(a), encode_text(b)) == cmp(a, b)


@given(st.sampled_from([0, HOUR_14]), SMALL_PARTS, st.sampled_from([0, HOUR_14]), SMALL_PARTS)
def test_a_prefix_range_holds_exactly_the_keys_under_that_prefix(pw, prefix, w, parts):
    key = window_key("w", w, *parts)
    under = w == pw and parts[: len(prefix)] == prefix
    assert within(key, window_prefix("w", pw, *prefix)) == under


@given(FAMILIES, WINDOWS, PARTS, FAMILIES, WINDOWS)
def test_family_range_before_a_window(family, window, parts, scanned, before):
    key = window_key(family, window, *parts)
    assert within(key, family_range(scanned)) == (family == scanned)
    assert within(key, family_range(scanned, before)) == (family == scanned and window < before)


@given(FAMILIES, WINDOWS, PARTS, st.sampled_from(["applied", "stream-time", "latest-week"]))
def test_no_data_key_is_a_bookkeeping_or_checkpoint_key(family, window, parts, name):
    if family == META:
        return
    for key in (window_key(family, window, *parts), plain_key(family, *parts)):
        assert not within(key, family_range(META))
        assert key not in (meta_key(name), CHECKPOINT_KEY)
        assert key > CHECKPOINT_KEY  # the store's local-only key sorts before every data key


def test_examples_the_old_layout_got_wrong():
    # Ids holding the old separator: one marker per (property, user), not one shared.
    assert window_key("hu", 0, "a\x1fb", "c") != window_key("hu", 0, "a", "b\x1fc")
    # A segment that is a string prefix of another stays out of the other's range.
    assert not within(window_key("w", 0, "ab", "p"), window_prefix("w", 0, "a"))
    assert not within(window_key("w", 0, "a\x00", "p"), window_prefix("w", 0, "a"))
    assert within(window_key("w", 0, "a", ""), window_prefix("w", 0, "a"))
    # A family that is a string prefix of another ("h" / "hu").
    assert not within(window_key("hu", 0, "p", "u"), family_range("h"))


def test_prefix_range_of_trailing_ff_bytes():
    assert prefix_range(b"a\xff\xff") == (b"a\xff\xff", b"b")
    with pytest.raises(ValueError):
        prefix_range(b"\xff")


def test_every_table_family_is_distinct_and_not_the_bookkeeping_one():
    """The families are what keeps the tables of one store apart: no two may share one.
    (``partials`` keys Kafka records, not a store, and is left out.)"""
    families: dict[str, str] = {}
    for info in pkgutil.iter_modules(app.tables.__path__):
        module = importlib.import_module(f"app.tables.{info.name}")
        uses_keys = {"window_key", "plain_key"} & set(vars(module))
        if not uses_keys or info.name == "partials":
            continue
        for name in ("COUNTS", "USERS", "SUMMARY", "PROPERTY_VIEWS", "SEGMENT_VIEWS", "SEEN"):
            family = vars(module).get(name)
            if isinstance(family, str):
                where = f"{module.__name__}.{name}"
                assert family not in families, (where, families.get(family))
                assert family != META, where
                families[family] = where
    assert set(families) == {"h", "hu", "hs", "w", "ws", "su", "sc", "e"}
