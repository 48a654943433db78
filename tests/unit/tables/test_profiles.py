"""The profiles global table: how a run of ``user.profiles`` records changes it (``fold``, a
pure function), and the RocksDB replica that stores those changes with their checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine.store import rocksdb_options
from app import codec
from app.tables.profiles import (
    DELETED,
    FAILED,
    REPLAYED,
    SKIPPED,
    STORED,
    Changes,
    ProfilesTable,
    fold,
    offset_key,
    user_key,
)

MAX = 64 * 1024


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def profile(user: str, segment: str, **extra: object) -> bytes:
    return orjson.dumps({"userId": user, "segment": segment, "version": "1.0", **extra})


def segment(changes: Changes, user: str) -> str | None:
    raw = changes.profiles[user]
    return None if raw is None else orjson.loads(raw)["segment"]


# -- fold: records -> changes ---------------------------------------------------------------
def test_profiles_are_stored_as_their_wire_json_under_their_user_id():
    value = profile("user-1", "investor", email="a@b.c", unknown="dropped")
    changes = fold([Record(0, 0, b"user-1", value)], MAX)
    assert orjson.loads(changes.profiles["user-1"]) == {
        "userId": "user-1", "segment": "investor", "version": "1.0", "email": "a@b.c",
    }
    assert changes.next_offsets == {0: 1}
    assert changes.outcomes == {STORED: 1}


def test_a_tombstone_deletes_and_the_later_record_of_a_user_wins():
    changes = fold(
        [
            Record(0, 0, b"u1", profile("u1", "investor")),
            Record(0, 1, b"u2", profile("u2", "renter")),
            Record(0, 2, b"u1", profile("u1", "student")),
            Record(0, 3, b"u2", None),
            Record(0, 4, b"u3", None),
            Record(0, 5, b"u3", profile("u3", "family")),
        ],
        MAX,
    )
    assert segment(changes, "u1") == "student"
    assert changes.profiles["u2"] is None
    assert segment(changes, "u3") == "family"
    assert changes.outcomes == {STORED: 4, DELETED: 2}
    assert changes.next_offsets == {0: 6}


@pytest.mark.parametrize(
    "key, value",
    [
        (None, profile("u1", "investor")),  # no key
        (b"\xff\xfe", None),  # a tombstone whose key is not UTF-8
        (b"\xffnext-offset:1", None),  # keyed like an internal key of the old table
        (b"", None),  # empty key
        (b"u\x001", None),  # a control character
        (b"x" * 257, None),  # longer than 256 bytes
        (b"someone-else", profile("u1", "investor")),  # key != userId
        (b"u1", b"[" * 40 + b"]" * 40),  # nested too deep
        (b"u1", b'{"userId":"u1","segment":"s","profile":' + b'{"a":' * 40 + b"1" + b"}" * 41),
        (b"u1", b"not json"),
    ],
)
def test_invalid_records_change_nothing_but_the_offset(key, value):
    changes = fold([Record(0, 7, key, value)], MAX)
    assert changes.profiles == {}
    assert changes.outcomes == {SKIPPED: 1}
    assert changes.next_offsets == {0: 8}
    assert all(k.startswith(b"o") for k, _ in changes.writes())


def test_a_profile_keyed_by_another_id_does_not_overwrite_that_id():
    changes = fold(
        [
            Record(0, 0, b"victim", profile("victim", "investor")),
            Record(0, 1, b"attacker", profile("victim", "renter")),
        ],
        MAX,
    )
    assert segment(changes, "victim") == "investor"
    assert "attacker" not in changes.profiles


def test_a_record_whose_reading_raises_is_left_out_and_the_rest_applied(monkeypatch):
    decode = codec.decode_profile

    def failing(key, value, max_bytes):  # noqa: ANN001, ANN202
        if key == b"user-bad":
            raise RecursionError("unforeseen")
        return decode(key, value, max_bytes=max_bytes)

    monkeypatch.setattr(codec, "decode_profile", failing)
    changes = fold([
        Record(0, 0, b"user-1", profile("user-1", "investor")),
        Record(0, 1, b"user-bad", profile("user-bad", "renter")),
        Record(0, 2, b"user-2", profile("user-2", "agent")),
    ], MAX)
    assert sorted(changes.profiles) == ["user-1", "user-2"]
    assert changes.next_offsets == {0: 3}
    assert changes.outcomes[FAILED] == 1 and changes.outcomes[STORED] == 2


def test_records_below_the_checkpoint_were_applied_already():
    records = [Record(0, 4, b"u1", profile("u1", "old")), Record(0, 5, b"u1", profile("u1", "new")),
               Record(1, 2, b"u2", profile("u2", "investor"))]
    changes = fold(records, MAX, resume={0: 5, 1: 0})
    assert segment(changes, "u1") == "new"
    assert changes.outcomes == {STORED: 2, REPLAYED: 1}
    assert changes.next_offsets == {0: 6, 1: 3}


def test_the_checkpoint_is_the_next_offset_of_each_partition_read():
    changes = fold(
        [Record(0, 10, b"u1", profile("u1", "a")), Record(2, 3, b"u2", None),
         Record(0, 14, b"bad\x01", None)],  # a gap (compaction) and a rejected last record
        MAX,
    )
    writes = dict(changes.writes())
    assert writes[offset_key(0)] == b"15" and writes[offset_key(2)] == b"4"
    assert writes[user_key("u2")] is None


user_ids = st.sampled_from(["u1", "u2", "u3", "ü-4", "\xffnext-offset:1", "o\u0100\u0101", "o"])
values = st.one_of(st.none(), st.sampled_from(["investor", "renter", "student"]))


@given(st.lists(st.tuples(st.integers(0, 2), user_ids, values), max_size=40), st.data())
def test_folding_any_split_into_batches_gives_one_fold_of_all(ops, data):
    """A restart can cut the stream anywhere, and a reconnect re-delivers records below the
    checkpoint: the table ends the same, and equals each user's last record per partition."""
    offsets: dict[int, int] = {}
    records = []
    for partition, user, seg in ops:
        key = user.encode("utf-8", "surrogatepass")
        value = None if seg is None else profile(user, seg)
        records.append(Record(partition, offsets.setdefault(partition, 0), key, value))
        offsets[partition] += 1
    whole = fold(records, MAX)

    state: dict[bytes, bytes | None] = {}
    resume: dict[int, int] = {}
    start = 0
    while start < len(records):
        end = data.draw(st.integers(start + 1, len(records)))
        back = data.draw(st.integers(0, start))  # re-delivered records from before
        changes = fold(records[back:end], MAX, resume)
        state.update(changes.writes())
        resume.update(changes.next_offsets)
        start = end
    assert resume == whole.next_offsets == offsets
    assert {k: v for k, v in state.items() if k.startswith(b"u")} == {
        user_key(u): v for u, v in whole.profiles.items()
    }
    expected: dict[str, bytes | None] = {}
    for record in records:
        expected[record.key.decode()] = record.value
    assert {u: v for u, v in whole.profiles.items()} == {
        u: None if v is None else orjson.dumps(orjson.loads(v)) for u, v in expected.items()
    }


# -- the RocksDB replica ----------------------------------------------------------------------
@pytest.fixture
def table(tmp_path: Path):
    t = ProfilesTable(tmp_path / "profiles", rocksdb_options(1 << 20, 1 << 20))
    t.open()
    yield t
    t.close()


def test_a_closed_table_answers_nothing(tmp_path: Path):
    t = ProfilesTable(tmp_path / "profiles", rocksdb_options(1 << 20, 1 << 20))
    assert t.profile("u1") is None and t.segment_of("u1") is None and t.estimated_keys() == 0


def test_the_table_serves_stored_profiles_and_forgets_deleted_ones(table):
    table.apply(fold([Record(0, 0, b"u1", profile("u1", "investor")),
                      Record(0, 1, "usér-ü".encode(), profile("usér-ü", "renter"))], MAX))
    assert table.segment_of("u1") == "investor"
    assert orjson.loads(table.profile("usér-ü"))["segment"] == "renter"
    assert table.profile("nobody") is None and table.segment_of("nobody") is None
    assert table.profile("\udcff") is None  # a lone surrogate (from a URL) finds nobody

    table.apply(fold([Record(0, 2, b"u1", profile("u1", "student"))], MAX))
    assert table.segment_of("u1") == "student"  # the cached segment was dropped
    table.apply(fold([Record(0, 3, b"u1", None)], MAX))
    assert table.segment_of("u1") is None and table.profile("u1") is None
    assert table.checkpoints() == {0: 4}


def test_no_user_id_reaches_the_checkpoint(table):
    """Users and offsets live in two namespaces: a userId that looks like an offset key is
    just a user."""
    sneaky = "o\x00\x00\x00\x00"  # offset_key(0) without the user prefix
    table.apply(fold([Record(0, 0, b"u1", profile("u1", "investor"))], MAX))
    table.apply(Changes(profiles={sneaky: b'{"segment":"x"}'}))
    table.apply(Changes(profiles={sneaky: None}))
    assert table.checkpoints() == {0: 1}
    assert table.segment_of("u1") == "investor"


def test_the_cache_is_bounded(tmp_path: Path):
    t = ProfilesTable(tmp_path / "profiles", rocksdb_options(1 << 20, 1 << 20), cache_size=4)
    t.open()
    t.apply(fold([Record(0, i, f"u{i}".encode(), profile(f"u{i}", f"s{i}")) for i in range(10)],
                 MAX))
    assert [t.segment_of(f"u{i}") for i in range(10)] == [f"s{i}" for i in range(10)]
    assert len(t._cache) <= 4  # noqa: SLF001
    t.close()


def test_a_reopened_table_resumes_from_its_checkpoint(tmp_path: Path):
    """What a restart (or SIGKILL: each write batch is atomic) leaves: the profiles and the
    offsets they were read up to, together."""
    options = rocksdb_options(1 << 20, 1 << 20)
    first = ProfilesTable(tmp_path / "profiles", options)
    first.open()
    first.apply(fold([Record(0, 0, b"u1", profile("u1", "investor")),
                      Record(1, 0, b"u2", profile("u2", "renter"))], MAX))
    first.apply(fold([Record(0, 1, b"u1", None), Record(0, 2, b"u3", profile("u3", "family"))],
                     MAX, first.checkpoints()))
    del first  # not closed

    second = ProfilesTable(tmp_path / "profiles", options)
    second.open()
    try:
        assert second.checkpoints() == {0: 3, 1: 1}
        assert second.segment_of("u1") is None
        assert (second.segment_of("u2"), second.segment_of("u3")) == ("renter", "family")
        # Re-delivered records below the checkpoint change nothing.
        second.apply(fold([Record(0, 2, b"u3", profile("u3", "stale"))], MAX, second.checkpoints()))
        assert second.segment_of("u3") == "family"
        assert second.estimated_keys() >= 2
    finally:
        second.close()


def test_clear_drops_profiles_and_checkpoints(table):
    table.apply(fold([Record(0, 0, b"u1", profile("u1", "investor"))], MAX))
    assert table.segment_of("u1") == "investor"
    table.clear()
    assert table.checkpoints() == {} and table.segment_of("u1") is None
