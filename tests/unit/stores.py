"""Store helpers for unit tests."""

from __future__ import annotations

from app.engine.store import PartitionStore


def commit(store: PartitionStore, changelog_offset: int | None) -> None:
    """What ``OwnedPartitions`` does to a store around a successful commit transaction:
    seal the pending changes, then write them to RocksDB with the changelog offset."""
    store.seal()
    store.apply_sealed(changelog_offset)
