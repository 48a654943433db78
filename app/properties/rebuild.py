"""Rebuild the aggregates of one ``property.events`` partition from its records and compare
them with the stored ones (the properties stage's changelog): the event log is the source of
truth, and the state the stage keeps must be exactly what replaying the log gives.

The records are applied by the stage's own processor, over a scratch store, up to the offset
the stored state says it holds (its applied offset), so a stage that is behind or ahead of
the log's end compares just as exactly. What differs is reported per property, readably.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.properties import snapshots
from app.properties.aggregate import PropertyState, StoredEvent
from app.engine.applied import APPLIED_KEY
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.tables import properties as table
from app.tables.keys import META, encode_text


@dataclass
class PartitionCheck:
    partition: int
    applied_offset: int
    properties: int = 0
    events: int = 0
    snapshots_missing: int = 0  # not backfilled yet
    differences: list[str] = field(default_factory=list)


def applied_offset(stored: Mapping[bytes, bytes]) -> int:
    """The last input offset the stored state holds (-1: none)."""
    raw = stored.get(APPLIED_KEY)
    return int(raw) if raw is not None else -1


def rebuild_partition(
    partition: int,
    records: Iterable[tuple[int, bytes | None, bytes | None]],
    store: PartitionStore,
    config: PropertiesConfig,
    now_ms: int,
) -> dict[bytes, bytes]:
    """Apply ``(offset, key, value)`` records with the stage's rules; the data written."""
    processor = PropertiesProcessor(partition, store, Outbox(), config)
    for offset, key, value in records:
        processor.process(offset, key, value, now_ms)
    return {k: v for k, v in store.pending.items() if v is not None and not _meta(k)}


def compare(partition: int, stored: Mapping[bytes, bytes], rebuilt: Mapping[bytes, bytes]) -> PartitionCheck:
    """Every stored key against the rebuilt ones. Snapshots are compared like the rest, except
    that while the stored partition's backfill is not done (``app.properties.snapshots``), a
    snapshot it lacks is still to be written, not a difference."""
    check = PartitionCheck(partition, applied_offset(stored))
    data = {k: v for k, v in stored.items() if not _meta(k)}
    check.properties = sum(1 for k in rebuilt if k.startswith(_prefix(table.STATE)))
    check.events = sum(1 for k in rebuilt if k.startswith(_prefix(table.HISTORY)))
    backfilling = not snapshots.is_done(stored.get(snapshots.PROGRESS_KEY))
    snapshot_prefix = _prefix(table.SNAPSHOTS)
    for key in sorted(data.keys() | rebuilt.keys()):
        mine, theirs = data.get(key), rebuilt.get(key)
        if mine == theirs:
            continue
        if mine is None and backfilling and key.startswith(snapshot_prefix):
            check.snapshots_missing += 1
            continue
        check.differences.append(_describe(key, mine, theirs))
    return check


def _prefix(family: str) -> bytes:
    return encode_text(family)


def _meta(key: bytes) -> bool:
    return key.startswith(_prefix(META))


def _describe(key: bytes, stored: bytes | None, rebuilt: bytes | None) -> str:
    """One difference, in words."""
    if key.startswith(_prefix(table.STATE)):
        show = lambda raw: (  # noqa: E731
            "none" if raw is None else str(PropertyState.from_bytes(raw).to_wire())
        )
        subject = PropertyState.from_bytes(stored or rebuilt).property_id
        return f"state of {subject!r}: stored {show(stored)}, rebuilt {show(rebuilt)}"
    if key.startswith(_prefix(table.HISTORY)):
        show = lambda raw: (  # noqa: E731
            "none" if raw is None else str(StoredEvent.from_bytes(raw).to_wire())
        )
        entry = StoredEvent.from_bytes(stored or rebuilt)
        return (
            f"history of {entry.event.property_id!r} version {entry.version}: "
            f"stored {show(stored)}, rebuilt {show(rebuilt)}"
        )
    if key.startswith(_prefix(table.SNAPSHOTS)):
        state = PropertyState.from_bytes(stored or rebuilt)
        show = lambda raw: (  # noqa: E731
            "none" if raw is None else str(PropertyState.from_bytes(raw).to_wire())
        )
        return (
            f"snapshot of {state.property_id!r} version {state.version}: "
            f"stored {show(stored)}, rebuilt {show(rebuilt)}"
        )
    return f"key {key!r}: stored {stored!r}, rebuilt {rebuilt!r}"
