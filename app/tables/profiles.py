"""``profiles``: the viewers' profiles, a global table held whole in RocksDB on every worker.

Built the way Kafka Streams builds a GlobalKTable: the compacted source topic ``user.profiles``
is the table's changelog. Every worker reads all of it itself (``app.tables.profiles_reader``)
and writes each fetched batch's changes together with the source offsets that batch reached in
one RocksDB write batch: the table and its checkpoint never disagree, and a restart resumes
exactly where the last write stopped.

Every replica classifies every record with the same ``codec.decode_profile``, so all replicas
hold the same profiles; invalid records are skipped here (the profile-rejects stage dead-letters
each of them once, ``app.stages.profile_rejects``).

Two namespaces, told apart by their first byte, so no userId can reach the bookkeeping:
``u`` + userId (UTF-8) -> the profile's wire JSON, as ``GET /api/users/{userId}`` serves it;
``o`` + partition (4 bytes, big-endian) -> the next offset of that partition to read.
"""

from __future__ import annotations

import logging
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
from rocksdict import Options, Rdict, WriteBatch

from app import codec
from app.engine.failures import PartitionUnavailable
from app.engine.moved import Moved
from app.engine.store import estimated_keys, native_memory
from app.models.events import ProfileDeleted, Rejection

log = logging.getLogger(__name__)

USER_PREFIX = b"u"
OFFSET_PREFIX = b"o"

# Outcomes of a record, as counted in ``Changes.outcomes``.
STORED = "stored"
DELETED = "deleted"
SKIPPED = "skipped"  # invalid: left out of every replica alike
FAILED = "failed"  # reading it raised: left out alike, a processing_error dead letter
REPLAYED = "replayed"  # below the partition's next offset: applied already


class SourceRecord(Protocol):
    """The part of a ``user.profiles`` record the table reads (an aiokafka ConsumerRecord)."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def user_key(user_id: str) -> bytes:
    # surrogatepass: a lone surrogate (from a URL, say) gives a key no stored user has,
    # instead of an encoding error.
    return USER_PREFIX + user_id.encode("utf-8", "surrogatepass")


def offset_key(partition: int) -> bytes:
    return OFFSET_PREFIX + partition.to_bytes(4, "big")


@dataclass(slots=True)
class Changes:
    """What a run of ``user.profiles`` records does to the table: the last state of each
    userId they touch (None: deleted), and the next offset to read of each partition."""

    profiles: dict[str, bytes | None] = field(default_factory=dict)
    next_offsets: dict[int, int] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)

    def writes(self) -> list[tuple[bytes, bytes | None]]:
        """The table's writes, checkpoint included (value None: delete the key)."""
        out: list[tuple[bytes, bytes | None]] = [
            (user_key(user_id), value) for user_id, value in self.profiles.items()
        ]
        out.extend(
            (offset_key(partition), b"%d" % offset)
            for partition, offset in sorted(self.next_offsets.items())
        )
        return out


def fold(
    records: Iterable[SourceRecord], max_bytes: int, resume: Mapping[int, int] | None = None
) -> Changes:
    """The changes ``records`` (in fetch order: offset order within a partition) make to a
    table that has read each partition up to ``resume`` (partition -> next offset).

    A record below its partition's next offset was applied already and changes nothing;
    otherwise the later record of a userId wins. A rejected record moves the offset on and
    stores nothing.
    """
    changes = Changes()
    profiles, next_offsets, outcomes = changes.profiles, changes.next_offsets, changes.outcomes
    resume = resume or {}
    for record in records:
        partition, offset = record.partition, record.offset
        expected = next_offsets.get(partition)
        if expected is None:
            expected = resume.get(partition, 0)
        if offset < expected:
            outcomes[REPLAYED] += 1
            continue
        next_offsets[partition] = offset + 1
        try:
            result = codec.decode_profile(record.key, record.value, max_bytes=max_bytes)
        except Exception as exc:  # noqa: BLE001 - one record must not stop the table
            # The profile-rejects stage meets the same failure and dead-letters the record
            # as processing_error; every replica leaves it out alike.
            log.error("%s[%d]@%d: reading a profile failed (%s: %s); left out",
                      getattr(record, "topic", "user.profiles"), partition, offset,
                      type(exc).__name__, exc)
            outcomes[FAILED] += 1
            continue
        if isinstance(result, Rejection):
            outcomes[SKIPPED] += 1
        elif isinstance(result, ProfileDeleted):
            profiles[result.user_id] = None
            outcomes[DELETED] += 1
        else:
            # The codec bounds the nesting depth, so this encodes whatever it accepted.
            profiles[result.user_id] = orjson.dumps(result.to_wire())
            outcomes[STORED] += 1
    return changes


_UNCACHED = object()
_ABSENT = object()  # cached: the user has no profile


class ProfilesTable:
    """This worker's replica: reads by userId for the views join and the HTTP API, writes
    from ``ProfilesReader`` only (one task, on the event loop).

    The database opens with the reader (``open``), not with the app: faust commands that only
    build the app (``create-topics``) leave a running worker's database alone. Until then
    the table is empty.

    Segments are cached (every view asks for one; a RocksDB read and a JSON decode would
    cost about half a view's processing); ``apply`` drops the users it changes, and the
    cache is emptied when it holds ``cache_size`` users.
    """

    def __init__(self, path: Path, options: Options, cache_size: int = 100_000) -> None:
        self.path = path
        self._options = options
        self._db: Rdict | None = None
        self._cache: dict[str, object] = {}  # userId -> segment or _ABSENT
        self._cache_size = cache_size
        # Notified at every write: reads that wait for a position of user.profiles.
        self.moved = Moved()

    def open(self) -> None:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = Rdict(str(self.path), self._options)

    def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            db.close()
        self._cache.clear()

    # -- reads --------------------------------------------------------------------------
    def profile(self, user_id: str) -> bytes | None:
        """The stored profile's wire JSON; None if the user has none."""
        db = self._db
        return db.get(user_key(user_id)) if db is not None else None

    def segment_of(self, user_id: str) -> str | None:
        segment = self._cache.get(user_id, _UNCACHED)
        if segment is _UNCACHED:
            raw = self.profile(user_id)
            segment = orjson.loads(raw)["segment"] if raw is not None else _ABSENT
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[user_id] = segment
        return None if segment is _ABSENT else segment  # type: ignore[return-value]

    def checkpoints(self) -> dict[int, int]:
        """partition -> next offset of ``user.profiles`` to read, as last written."""
        out: dict[int, int] = {}
        for key, value in self._opened().items(from_key=OFFSET_PREFIX):
            if not key.startswith(OFFSET_PREFIX):
                break
            out[int.from_bytes(key[len(OFFSET_PREFIX) :], "big")] = int(value)
        return out

    def estimated_keys(self) -> int:
        """RocksDB's estimate of the keys held (profiles, plus one per partition)."""
        db = self._db
        return estimated_keys(db) if db is not None else 0

    def memory(self) -> dict[str, int]:
        """Native memory of the table's database, by kind (``app.engine.store``)."""
        db = self._db
        return native_memory(db) if db is not None else {}

    # -- writes -------------------------------------------------------------------------
    def apply(self, changes: Changes) -> None:
        """Write the changes and their checkpoint atomically (one RocksDB write batch)."""
        batch = WriteBatch(raw_mode=True)
        for key, value in changes.writes():
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
        self._opened().write(batch)
        pop = self._cache.pop
        for user_id in changes.profiles:
            pop(user_id, None)
        self.moved.notify()

    def clear(self) -> None:
        """Drop every profile and checkpoint (the source topic was recreated or truncated)."""
        self.close()
        Rdict.destroy(str(self.path), self._options)
        shutil.rmtree(self.path, ignore_errors=True)
        self.open()

    def _opened(self) -> Rdict:
        if self._db is None:
            raise PartitionUnavailable(f"{self.path}: the profiles table is not open")
        return self._db
