"""Key layout ``<family>\\x1f<window ms, 13 digits>\\x1f<parts>``: byte order is window order."""

from __future__ import annotations

from app.tables.keys import SEP, family_range, split_key, window_key, window_prefix

HOUR_14 = 1_795_183_200_000  # 2026-11-20T14:00:00Z


def test_window_key_layout():
    assert SEP == "\x1f"
    assert window_key("h", HOUR_14, "prop-1") == b"h\x1f1795183200000\x1fprop-1"
    assert window_key("hu", 5, "prop-1", "user-7") == b"hu\x1f0000000000005\x1fprop-1\x1fuser-7"
    assert window_key("ws", 0) == b"ws\x1f0000000000000"


def test_window_keys_sort_in_window_order():
    windows = [5, 3_600_000, 86_400_000, HOUR_14, HOUR_14 + 3_600_000]
    keys = [window_key("h", w, "p") for w in windows]
    assert sorted(keys) == keys


def test_split_key():
    key = b"hu\x1f0000000000005\x1fprop-1\x1fuser-7"
    assert split_key(key) == ["hu", "0000000000005", "prop-1", "user-7"]


def test_family_range_covers_the_family_and_nothing_else():
    start, end = family_range("h")
    inside = [window_key("h", 0, "p"), window_key("h", HOUR_14, "zzz")]
    outside = [window_key("hu", 0, "p", "u"), b"g", b"i", window_key("w", 0, "s", "p")]
    assert all(start <= k < end for k in inside)
    assert not any(start <= k < end for k in outside)


def test_family_range_before_a_window_is_half_open():
    start, end = family_range("h", HOUR_14)
    assert start <= window_key("h", HOUR_14 - 3_600_000, "p") < end
    assert not (start <= window_key("h", HOUR_14, "p") < end)
    assert not (start <= window_key("h", HOUR_14, "") < end)
    assert end == b"h\x1f1795183200000"


def test_window_prefix_does_not_match_a_longer_segment_name():
    start, end = window_prefix("w", HOUR_14, "inv")
    assert start <= window_key("w", HOUR_14, "inv", "prop-1") < end
    assert not (start <= window_key("w", HOUR_14, "investor", "prop-1") < end)
    assert not (start <= window_key("ws", HOUR_14, "inv") < end)
    assert not (start <= window_key("w", HOUR_14 + 1, "inv", "prop-1") < end)
