"""ProfileLookup: a user's segment from the profiles table (a dict stands in for the table)."""

from __future__ import annotations

import orjson

from app.tables.profiles import ProfileLookup


def test_segment_and_profile_of_a_stored_user():
    raw = orjson.dumps({"userId": "user-77", "segment": "investor", "version": "2.0"})
    lookup = ProfileLookup({b"user-77": raw})

    assert lookup.segment_of("user-77") == "investor"
    assert lookup.profile("user-77") == raw


def test_unknown_user_has_no_segment():
    lookup = ProfileLookup({})
    assert lookup.segment_of("user-1") is None
    assert lookup.profile("user-1") is None


def test_non_ascii_user_ids_are_utf8_keys():
    raw = orjson.dumps({"userId": "usér-ü", "segment": "renter"})
    assert ProfileLookup({"usér-ü".encode(): raw}).segment_of("usér-ü") == "renter"
