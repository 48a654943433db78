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

    offsets = iter(range(100))

    def record(key: bytes, value: bytes | None, offset: int | None = None):
        """What faust's recovery hands the table: the changelog's next record, or ``offset``."""
        offset = next(offsets) if offset is None else offset
        message = SimpleNamespace(  # raw bytes: our keys are bytes
            key=key, value=value, partition=0, offset=offset, tp=TP("profiles-changelog", 0)
        )
        return SimpleNamespace(key=key, value=value, message=message)

    table.apply_changelog_batch([record(b"u1", orjson.dumps({"segment": "investor"}))])
    assert lookup.segment_of("u1") == "investor"
    table.apply_changelog_batch([record(b"u1", orjson.dumps({"segment": "renter"}))])
    assert lookup.segment_of("u1") == "renter"
    table.apply_changelog_batch([record(b"u1", None)])
    assert lookup.segment_of("u1") is None


def test_the_global_table_holds_changelog_records_behind_a_gap_until_it_is_read(tmp_path):
    """faust can lose changelog records on their way to the table (app.tables.changelog_gaps):
    the table applies nothing past the hole until the records of the hole are given to it."""
    from types import SimpleNamespace

    import faust
    from faust.types import TP

    from app.settings import Settings
    from app.tables.changelog_gaps import Gap
    from app.tables.profiles import create_profiles_table

    app = faust.App("profiles-gap-test", store="memory://", datadir=str(tmp_path))
    table = create_profiles_table(app, Settings())
    lookup = ProfileLookup(table)
    table.on_change = lookup.changed
    gaps: list[Gap] = []
    table.on_gap = gaps.append

    def message(offset: int, user: bytes, segment: str):
        value = orjson.dumps({"segment": segment})
        return SimpleNamespace(key=user, value=value, partition=0, offset=offset,
                               tp=TP("profiles-changelog", 0))

    def event(m):  # noqa: ANN001, ANN202
        return SimpleNamespace(key=m.key, value=m.value, message=m)

    lost = message(1, b"u1", "renter")
    table.apply_changelog_batch([event(message(0, b"u1", "investor"))])
    table.apply_changelog_batch([event(message(2, b"u2", "investor"))])  # 1 never arrives
    assert gaps == [Gap(0, 1, 1)]
    assert lookup.segment_of("u1") == "investor" and lookup.segment_of("u2") is None

    table.apply_in_order(table.sequencer.filled(0, [lost]))  # what ChangelogRepair does
    assert lookup.segment_of("u1") == "renter" and lookup.segment_of("u2") == "investor"


def test_the_global_table_leaves_the_changelog_of_partitions_it_writes_to_the_writer(tmp_path):
    """A changelog record read back on the worker that wrote it may be older than the key's
    latest write there: applying it would undo that write."""
    from types import SimpleNamespace

    import faust
    from faust.types import TP

    from app.settings import Settings
    from app.tables.profiles import create_profiles_table

    app = faust.App("profiles-writing-test", store="memory://", datadir=str(tmp_path))
    table = create_profiles_table(app, Settings())
    lookup = ProfileLookup(table)
    table.on_change = lookup.changed

    def event(offset: int, segment: str):  # noqa: ANN202
        m = SimpleNamespace(key=b"u1", value=orjson.dumps({"segment": segment}), partition=0,
                            offset=offset, tp=TP("profiles-changelog", 0))
        return SimpleNamespace(key=m.key, value=m.value, message=m)

    table.apply_changelog_batch([event(0, "investor")])
    table.writing.add(0)
    table.data[b"u1"] = orjson.dumps({"segment": "renter"})  # stands in for the writer's write
    lookup.changed([b"u1"])
    table.apply_changelog_batch([event(1, "student")])  # an older write of ours, read back late
    assert lookup.segment_of("u1") == "renter"
    assert table.sequencer.applied(0) == 1

    table.writing.discard(0)  # revoked: another worker writes now
    table.apply_changelog_batch([event(2, "investor")])
    assert lookup.segment_of("u1") == "investor"
