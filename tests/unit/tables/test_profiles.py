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


def test_a_cached_segment_follows_changes_reported_by_the_table():
    table = {b"u1": orjson.dumps({"userId": "u1", "segment": "investor"})}
    lookup = ProfileLookup(table)
    assert lookup.segment_of("u1") == "investor"

    table[b"u1"] = orjson.dumps({"userId": "u1", "segment": "renter"})
    assert lookup.segment_of("u1") == "investor"  # cached until the table says it changed
    lookup.changed([b"u1"])
    assert lookup.segment_of("u1") == "renter"

    del table[b"u1"]
    lookup.changed([b"u1"])
    assert lookup.segment_of("u1") is None


def test_the_startup_snapshot_answers_only_for_users_missing_from_the_table():
    table = {b"u1": orjson.dumps({"userId": "u1", "segment": "investor"})}
    lookup = ProfileLookup(table)
    lookup.startup = {"u1": "renter", "u2": "family"}
    assert lookup.segment_of("u1") == "investor"
    assert lookup.segment_of("u2") == "family"
    table[b"u2"] = orjson.dumps({"userId": "u2", "segment": "student"})
    lookup.changed([b"u2"])
    assert lookup.segment_of("u2") == "student"


def test_the_cache_is_bounded():
    table = {f"u{i}".encode(): orjson.dumps({"segment": f"s{i}"}) for i in range(10)}
    lookup = ProfileLookup(table, cache_size=4)
    assert [lookup.segment_of(f"u{i}") for i in range(10)] == [f"s{i}" for i in range(10)]
    assert len(lookup._cache) <= 4


def test_the_global_table_reports_keys_applied_from_its_changelog(tmp_path):
    """Other workers' writes (and recovery) reach this worker only through the changelog.
    (The memory store stands in for RocksDB; both apply the batch's records as they come.)"""
    from types import SimpleNamespace

    import faust
    from faust.types import TP

    from app.settings import Settings
    from app.tables.profiles import create_profiles_table

    app = faust.App("profiles-test", store="memory://", datadir=str(tmp_path))
    table = create_profiles_table(app, Settings())
    lookup = ProfileLookup(table)
    table.on_change = lookup.changed

    def record(key: bytes, value: bytes | None):  # what faust's recovery hands the table
        message = SimpleNamespace(  # raw bytes: our keys are bytes
            key=key, value=value, partition=0, offset=0, tp=TP("profiles-changelog", 0)
        )
        return SimpleNamespace(key=key, value=value, message=message)

    table.apply_changelog_batch([record(b"u1", orjson.dumps({"segment": "investor"}))])
    assert lookup.segment_of("u1") == "investor"
    table.apply_changelog_batch([record(b"u1", orjson.dumps({"segment": "renter"}))])
    assert lookup.segment_of("u1") == "renter"
    table.apply_changelog_batch([record(b"u1", None)])
    assert lookup.segment_of("u1") is None
