"""One partition's state: a RocksDB database (rocksdict, raw bytes) behind a write-back cache.

Reads see the pending (dirty) writes first, then the sealed ones (taken for a commit that is
still in flight). Nothing reaches RocksDB until the changes are applied, which the partition
does only after the same changes were committed to the changelog, so the local database is
never ahead of the changelog.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteBatch, WriteBufferManager

from app.engine.failures import StoreFailure

log = logging.getLogger(__name__)

# Local-only bookkeeping, never sent to the changelog: the changelog offset this database
# reflects. Sorts before every data key.
CHECKPOINT_KEY = b"\x00changelog-offset"
_DELETED = None
ESTIMATE_KEYS = "rocksdb.estimate-num-keys"
# Where a database's native memory goes, by the name the gauge gives it. The block cache is
# shared by every database opened with the same options: its usage is the same in each.
MEMORY_PROPERTIES = {
    "memtables": "rocksdb.cur-size-all-mem-tables",
    "table_readers": "rocksdb.estimate-table-readers-mem",
    "block_cache": "rocksdb.block-cache-usage",
}
SHARED_MEMORY = frozenset({"block_cache"})


def rocksdb_options(
    block_cache_bytes: int, write_buffer_bytes: int, memtables_bytes: int | None = None
) -> Options:
    """Bounded memory for every database opened with these options: they share one block
    cache (rocksdict's default is 2 GiB each) and, given ``memtables_bytes``, one write buffer
    manager that flushes memtables early once all of them together hold that much (a worker
    has a database per stage and partition: 4 x 12 by default, each filling its own
    ``write_buffer_bytes`` memtable otherwise)."""
    options = Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(write_buffer_bytes)
    if memtables_bytes is not None:
        options.set_write_buffer_manager(WriteBufferManager(memtables_bytes, False))
    options.set_max_open_files(256)
    table = BlockBasedOptions()
    table.set_block_cache(Cache(block_cache_bytes))
    # Most reads are misses (a new user, a new event id): bloom filters answer them in memory.
    table.set_bloom_filter(10, False)
    options.set_block_based_table_factory(table)
    return options


class PartitionStore:
    """Key/value state of one partition, with pending writes held until committed."""

    def __init__(self, path: Path, options: Options) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = Rdict(str(path), options)
        self._dirty: dict[bytes, bytes | None] = {}
        self._sealed: dict[bytes, bytes | None] | None = None  # in a commit in flight

    # -- reads --------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        dirty = self._dirty
        if key in dirty:
            return dirty[key]
        sealed = self._sealed
        if sealed is not None and key in sealed:
            return sealed[key]
        try:
            return self._db.get(key)
        except Exception as exc:  # noqa: BLE001 - rocksdict raises plain exceptions
            raise StoreFailure(f"{self.path}: reading failed: {exc}") from exc

    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Items with ``start <= key < end`` in key order, pending and sealed writes included."""
        overlay = self._dirty if self._sealed is None else {**self._sealed, **self._dirty}
        pending = sorted((k, v) for k, v in overlay.items() if start <= k < end)
        committed = (
            (key, value) for key, value in self._db.items(from_key=start) if key not in overlay
        )
        for key, value in heapq.merge(_until(committed, end, self.path), pending):
            if value is not _DELETED:
                yield key, value

    def committed(self) -> CommittedState:
        """A read-only view without pending writes: what survives a crash right now."""
        return CommittedState(self._db)

    def checkpoint(self) -> int | None:
        raw = self._db.get(CHECKPOINT_KEY)
        return int(raw) if raw is not None else None

    def estimated_keys(self) -> int:
        return estimated_keys(self._db)

    def memory(self) -> dict[str, int]:
        return native_memory(self._db)

    # -- writes -------------------------------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        self._dirty[key] = value

    def delete(self, key: bytes) -> None:
        self._dirty[key] = _DELETED

    @property
    def pending(self) -> dict[bytes, bytes | None]:
        return self._dirty

    def rollback(self) -> None:
        """Forget the changes made since the last ``seal``; sealed ones (a commit in flight)
        stay. What a record that failed half-way wrote goes with them (``app.engine.runner``)."""
        self._dirty = {}

    def discard_pending(self) -> None:
        """Forget every change not in RocksDB yet: pending and sealed."""
        self._dirty = {}
        self._sealed = None

    def seal(self) -> dict[bytes, bytes | None]:
        """Take the pending changes for a commit; new writes start a new pending set."""
        if self._sealed is not None:
            raise RuntimeError(f"{self.path}: a commit is already in flight")
        self._sealed, self._dirty = self._dirty, {}
        return self._sealed

    def apply_sealed(self, changelog_offset: int | None) -> None:
        """The sealed changes were committed: write them to RocksDB."""
        if self._sealed is not None:
            self.apply(self._sealed.items(), changelog_offset)
            self._sealed = None

    def apply(
        self, items: Iterable[tuple[bytes, bytes | None]], changelog_offset: int | None
    ) -> None:
        batch = WriteBatch(raw_mode=True)
        for key, value in items:
            if value is _DELETED:
                batch.delete(key)
            else:
                batch.put(key, value)
        if changelog_offset is not None:
            batch.put(CHECKPOINT_KEY, str(changelog_offset).encode())
        self._db.write(batch)

    def close(self) -> None:
        self._dirty = {}
        self._sealed = None
        self._db.close()


def estimated_keys(db: Rdict) -> int:
    """RocksDB's estimate of the keys in ``db``; 0 when it has none to give (closed meanwhile)."""
    try:
        return int(db.property_int_value(ESTIMATE_KEYS) or 0)
    except Exception:  # noqa: BLE001 - a gauge must never fail the worker
        log.debug("no key estimate from %r", db, exc_info=True)
        return 0


def native_memory(db: Rdict) -> dict[str, int]:
    """Bytes ``db`` holds outside Python, by kind (``MEMORY_PROPERTIES``); 0 for a kind it
    cannot tell (closed meanwhile)."""
    out = {}
    for kind, prop in MEMORY_PROPERTIES.items():
        try:
            out[kind] = int(db.property_int_value(prop) or 0)
        except Exception:  # noqa: BLE001 - a gauge must never fail the worker
            out[kind] = 0
    return out


def total_memory(parts: Iterable[dict[str, int]]) -> dict[str, int]:
    """The memory of several databases: their own kinds summed, the shared cache once."""
    total = dict.fromkeys(MEMORY_PROPERTIES, 0)
    for part in parts:
        for kind, size in part.items():
            total[kind] = max(total[kind], size) if kind in SHARED_MEMORY else total[kind] + size
    return total


class CommittedState:
    """Reads of committed state only, for the web views."""

    def __init__(self, db: Rdict) -> None:
        self._db = db

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._db.items(from_key=start):
            if key >= end:
                break
            yield key, value


def _until(
    items: Iterator[tuple[bytes, bytes]], end: bytes, path: Path
) -> Iterator[tuple[bytes, bytes]]:
    try:
        for key, value in items:
            if key >= end:
                return
            yield key, value
    except Exception as exc:  # noqa: BLE001 - rocksdict raises plain exceptions
        raise StoreFailure(f"{path}: scanning failed: {exc}") from exc
