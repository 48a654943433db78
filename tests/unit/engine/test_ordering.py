"""The per-partition record order check (app.engine.ordering)."""

from __future__ import annotations

from app.engine.ordering import PartitionOrder, Verdict

APPLY, SEEK, DROP, REREAD = Verdict.APPLY, Verdict.SEEK, Verdict.DROP, Verdict.REREAD


def admit_all(order: PartitionOrder, offsets: list[int]) -> list[Verdict]:
    return [order.admit(offset) for offset in offsets]


def test_in_order_records_are_applied() -> None:
    order = PartitionOrder.opened(applied_offset=9, check_gaps=True)
    assert admit_all(order, [10, 11, 12]) == [APPLY] * 3
    assert order.expected == 13


def test_first_record_beyond_the_applied_offset_seeks_back_and_waits_for_the_reread() -> None:
    order = PartitionOrder.opened(applied_offset=9, check_gaps=False)
    assert order.admit(15) is SEEK
    assert order.expected == 10  # where the caller seeks to
    # Records still buffered from before the seek are dropped; the re-read is applied.
    assert admit_all(order, [16, 17, 10, 11, 15, 16]) == [DROP, DROP, APPLY, APPLY, APPLY, APPLY]
    assert order.expected == 17


def test_without_gap_checks_a_later_gap_is_accepted() -> None:
    """Transactional input: markers and aborted records leave gaps that are not losses."""
    order = PartitionOrder.opened(applied_offset=-1, check_gaps=False)
    assert admit_all(order, [0, 1, 3, 7]) == [APPLY] * 4


def test_gap_checks_seek_on_every_gap() -> None:
    order = PartitionOrder.opened(applied_offset=-1, check_gaps=True)
    assert admit_all(order, [0, 1, 5]) == [APPLY, APPLY, SEEK]
    assert order.expected == 2
    assert admit_all(order, [2, 3, 4, 5, 6]) == [APPLY] * 5


def test_the_reread_may_start_above_the_expected_offset() -> None:
    """Offsets below the gap may be markers: the first record at or below it is accepted."""
    order = PartitionOrder.opened(applied_offset=9, check_gaps=False)
    assert admit_all(order, [20, 14, 15]) == [SEEK, APPLY, APPLY]


def test_records_seen_again_after_our_seek_are_rereads_not_replays() -> None:
    order = PartitionOrder.opened(applied_offset=-1, check_gaps=True)
    assert admit_all(order, [0, 1, 2, 3]) == [APPLY] * 4
    assert order.admit(9) is SEEK  # a stale buffered record shows a gap: back to 4
    assert admit_all(order, [4, 5, 6, 7, 8, 9]) == [APPLY] * 6
    assert admit_all(order, [5, 6]) == [REREAD, REREAD]  # a second copy of the re-read
    assert order.admit(10) is APPLY


def test_before_any_seek_an_old_offset_goes_to_the_processor() -> None:
    """Without a seek of ours, a record at or below the applied offset is a real replay: the
    processor skips it and counts it as replayed."""
    order = PartitionOrder.opened(applied_offset=9, check_gaps=True)
    assert admit_all(order, [5, 6, 10]) == [APPLY, APPLY, APPLY]
