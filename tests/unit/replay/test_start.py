"""Where a shadow starts: offsets_for_times answers and the state that makes the stage begin."""

from __future__ import annotations

from app.engine.ordering import PartitionOrder, Verdict
from app.engine.store import PartitionStore, rocksdb_options
from app.replay.start import start_offsets
from app.engine.applied import APPLIED_KEY, Applied, seed


def test_a_partition_without_records_at_or_after_the_time_starts_at_its_end():
    assert start_offsets({0: 5, 1: None, 2: 0}, {0: 9, 1: 7, 2: 3}) == {0: 5, 1: 7, 2: 0}


def test_the_stage_begins_exactly_at_the_start_offset(tmp_path):
    """The seeded applied offset makes the views stage take the start offset first, instead of
    seeking back to 0 as a fresh partition does (app.engine.ordering)."""
    records = seed({0: 120, 1: 0, 2: 1})
    assert records == {0: [(APPLIED_KEY, b"119")], 2: [(APPLIED_KEY, b"0")]}
    store = PartitionStore(tmp_path / "000", rocksdb_options(1 << 20, 1 << 20))
    try:
        store.apply(records[0], 0)  # restored from the changelog, as a worker opening it does
        applied = Applied(store).offset
    finally:
        store.close()
    assert applied == 119
    order = PartitionOrder.opened(applied, check_gaps=True)
    assert order.admit(120) is Verdict.APPLY
    fresh = PartitionOrder.opened(-1, check_gaps=True)
    assert fresh.admit(120) is Verdict.SEEK  # what the seed is there to prevent
