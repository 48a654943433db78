"""PartitionStore: pending writes are read-your-writes, RocksDB only sees them when applied."""

from __future__ import annotations

import time

import pytest

from app.engine.store import CHECKPOINT_KEY, PartitionStore, rocksdb_options, total_memory
from tests.unit.stores import commit


def test_pending_put_is_visible_to_get_but_not_to_committed(store):
    store.put(b"k1", b"v1")

    assert store.get(b"k1") == b"v1"
    assert store.committed().get(b"k1") is None
    assert store.pending == {b"k1": b"v1"}


def test_a_commit_makes_writes_committed_and_clears_pending(store):
    store.put(b"k1", b"v1")
    store.put(b"k2", b"v2")

    commit(store, 7)

    assert store.pending == {}
    assert store.committed().get(b"k1") == b"v1"
    assert store.committed().get(b"k2") == b"v2"
    assert store.get(b"k2") == b"v2"


def test_pending_writes_are_visible_to_scan_but_not_to_committed_scan(store):
    store.put(b"a", b"1")
    commit(store, None)
    store.put(b"b", b"2")

    assert dict(store.scan(b"a", b"z")) == {b"a": b"1", b"b": b"2"}
    assert list(store.committed().scan(b"a", b"z")) == [(b"a", b"1")]


def test_pending_overwrite_of_committed_key_wins_in_get_and_scan(store):
    store.put(b"a", b"old")
    commit(store, None)
    store.put(b"a", b"new")

    assert store.get(b"a") == b"new"
    assert list(store.scan(b"a", b"b")) == [(b"a", b"new")]
    assert store.committed().get(b"a") == b"old"


def test_scan_is_half_open_start_inclusive_end_exclusive(store):
    for key in (b"a", b"b", b"c", b"d"):
        store.put(key, key.upper())
    commit(store, None)
    store.put(b"bb", b"BB")  # pending, inside the range
    store.put(b"d0", b"D0")  # pending, outside the range

    assert sorted(store.scan(b"b", b"d")) == [(b"b", b"B"), (b"bb", b"BB"), (b"c", b"C")]


def test_delete_of_committed_key_hides_it_from_get_and_scan_until_applied(store):
    store.put(b"a", b"1")
    store.put(b"b", b"2")
    commit(store, None)

    store.delete(b"a")

    assert store.get(b"a") is None
    assert list(store.scan(b"a", b"z")) == [(b"b", b"2")]
    # Not applied yet: what survives a crash still has it.
    assert store.committed().get(b"a") == b"1"

    commit(store, None)

    assert store.committed().get(b"a") is None
    assert list(store.committed().scan(b"a", b"z")) == [(b"b", b"2")]


def test_delete_of_pending_only_key_hides_it_from_scan(store):
    store.put(b"a", b"1")
    store.delete(b"a")

    assert store.get(b"a") is None
    assert list(store.scan(b"a", b"z")) == []
    commit(store, None)
    assert store.committed().get(b"a") is None


def test_put_after_delete_restores_the_key(store):
    store.put(b"a", b"1")
    commit(store, None)
    store.delete(b"a")
    store.put(b"a", b"2")

    assert list(store.scan(b"a", b"b")) == [(b"a", b"2")]
    commit(store, None)
    assert store.committed().get(b"a") == b"2"


def test_discard_pending_drops_uncommitted_writes(store):
    store.put(b"a", b"1")
    commit(store, None)
    store.put(b"a", b"2")
    store.put(b"b", b"3")
    store.delete(b"a")

    store.discard_pending()

    assert store.get(b"a") == b"1"
    assert store.get(b"b") is None
    assert store.pending == {}


def test_scan_merges_committed_and_pending_keys_in_key_order(store):
    store.put(b"a", b"1")
    store.put(b"c", b"3")
    commit(store, None)
    store.put(b"b", b"2")

    assert [key for key, _ in store.scan(b"a", b"z")] == [b"a", b"b", b"c"]


def test_checkpoint_is_none_until_applied_with_an_offset(store):
    assert store.checkpoint() is None
    store.put(b"a", b"1")
    commit(store, None)
    assert store.checkpoint() is None

    store.put(b"b", b"2")
    commit(store, 41)
    assert store.checkpoint() == 41

    store.put(b"c", b"3")
    commit(store, None)  # no new changelog offset: the old one stays
    assert store.checkpoint() == 41

    commit(store, 99)  # nothing pending still records the offset
    assert store.checkpoint() == 99


def test_checkpoint_and_applied_data_survive_reopen_pending_does_not(open_store):
    store = open_store("p007")
    store.put(b"a", b"1")
    commit(store, 12)
    store.put(b"b", b"lost")  # never applied: a crash loses it
    store.close()

    reopened = open_store("p007")

    assert reopened.checkpoint() == 12
    assert reopened.get(b"a") == b"1"
    assert reopened.get(b"b") is None


def test_checkpoint_key_is_outside_data_scans(store):
    store.put(b"h\x1f0000000000000\x1fp", b"x")
    commit(store, 5)

    assert CHECKPOINT_KEY < b"\x01"
    assert list(store.scan(b"\x01", b"\xff")) == [(b"h\x1f0000000000000\x1fp", b"x")]


def test_sealed_writes_stay_readable_under_new_pending_ones_until_applied(store):
    store.put(b"a", b"1")
    store.put(b"b", b"1")
    commit(store, 1)
    store.put(b"a", b"2")  # sealed for a commit in flight
    store.delete(b"b")
    store.put(b"c", b"2")
    assert store.seal() == {b"a": b"2", b"b": None, b"c": b"2"}
    assert store.pending == {}

    store.put(b"c", b"3")  # processing goes on meanwhile
    store.put(b"d", b"3")
    assert [store.get(k) for k in (b"a", b"b", b"c", b"d")] == [b"2", None, b"3", b"3"]
    assert list(store.scan(b"a", b"z")) == [(b"a", b"2"), (b"c", b"3"), (b"d", b"3")]
    assert store.committed().get(b"a") == b"1"  # RocksDB only after the commit
    with pytest.raises(RuntimeError):
        store.seal()  # one commit in flight at a time

    store.apply_sealed(2)
    assert store.committed().get(b"a") == b"2" and store.committed().get(b"b") is None
    assert store.committed().get(b"c") == b"2" and store.checkpoint() == 2
    assert store.pending == {b"c": b"3", b"d": b"3"}
    assert [store.get(k) for k in (b"a", b"b", b"c", b"d")] == [b"2", None, b"3", b"3"]


def test_discard_pending_drops_sealed_writes_too(store):
    store.put(b"a", b"1")
    store.seal()
    store.put(b"b", b"1")
    store.discard_pending()
    assert store.get(b"a") is None and store.get(b"b") is None
    store.apply_sealed(5)  # nothing left to apply
    assert store.checkpoint() is None


def test_memory_tells_the_memtables_that_hold_writes_not_yet_flushed(store):
    before = store.memory()
    assert set(before) == {"memtables", "table_readers", "block_cache"}
    store.put(b"k" * 10, b"v" * 100_000)
    commit(store, 1)
    assert store.memory()["memtables"] >= before["memtables"] + 100_000


def test_total_memory_sums_each_database_and_counts_the_shared_cache_once():
    parts = [
        {"memtables": 5, "table_readers": 1, "block_cache": 40},
        {"memtables": 7, "table_readers": 2, "block_cache": 40},
        {},  # a database closed meanwhile
    ]
    assert total_memory(parts) == {"memtables": 12, "table_readers": 3, "block_cache": 40}


def _write_to_four_stores(tmp_path, memtables_bytes):  # noqa: ANN001
    """Four stores with 4 MiB write buffers, 2 MiB written to each and committed."""
    options = rocksdb_options(1 << 20, 4 << 20, memtables_bytes)
    stores = [PartitionStore(tmp_path / f"p{i}", options) for i in range(4)]
    for n in range(20):
        for store in stores:
            store.put(b"%03d" % n, bytes(100_000))
            commit(store, n)
    return stores


def _memtables(stores) -> int:  # noqa: ANN001
    return total_memory(s.memory() for s in stores)["memtables"]


def test_a_shared_write_buffer_manager_bounds_the_memtables_of_all_stores(tmp_path):
    unbounded = _write_to_four_stores(tmp_path / "a", None)
    bounded = _write_to_four_stores(tmp_path / "b", 2 << 20)
    try:
        # below its write buffer, no store flushes on its own: each keeps its 2 MB
        assert _memtables(unbounded) >= 4 * 2_000_000
        # the manager's flushes run in RocksDB's background threads: slower on a busy machine
        # The manager's bound is soft: it is checked at each write, a flush starts once usage
        # passes it, and a memtable being flushed still counts. On a busy machine the flushes
        # end after the last write, so keep writing a byte (each write checks the bound again)
        # until the background flushes have brought the total down.
        deadline = time.monotonic() + 20
        n = 100
        while _memtables(bounded) > 4 << 20 and time.monotonic() < deadline:
            n += 1
            for store in bounded:
                store.put(b"%03d" % n, b"x")
                commit(store, n)
            time.sleep(0.1)
        assert _memtables(bounded) <= 4 << 20, (_memtables(bounded), _memtables(unbounded))
    finally:
        for store in unbounded + bounded:
            store.close()
