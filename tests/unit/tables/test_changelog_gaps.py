"""``ChangelogSequencer``: changelog records applied in offset order, none skipped."""

from __future__ import annotations

from dataclasses import dataclass

from app.tables.changelog_gaps import ChangelogSequencer, Gap


@dataclass(frozen=True)
class Rec:
    partition: int
    offset: int


def recs(partition: int, *offsets: int) -> list[Rec]:
    return [Rec(partition, o) for o in offsets]


def offsets(records: list) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in records]


def test_contiguous_records_apply_at_once_from_the_persisted_offset() -> None:
    seq = ChangelogSequencer({0: 9, 1: None}.get)
    ready, gaps = seq.admit(recs(0, 10, 11) + recs(1, 0, 1))
    assert offsets(ready) == [(0, 10), (0, 11), (1, 0), (1, 1)]
    assert gaps == []
    assert seq.applied(0) == 11 and seq.applied(1) == 1


def test_records_at_or_below_the_applied_offset_are_dropped() -> None:
    seq = ChangelogSequencer({0: 5}.get)
    ready, gaps = seq.admit(recs(0, 3, 5, 6, 6))
    assert offsets(ready) == [(0, 6)]
    assert gaps == []


def test_a_gap_holds_everything_after_it_until_filled() -> None:
    seq = ChangelogSequencer(lambda p: -1)
    ready, gaps = seq.admit(recs(0, 0, 1, 5, 6))
    assert offsets(ready) == [(0, 0), (0, 1)]
    assert gaps == [Gap(0, 2, 4)]
    # More arrive while the gap is read again: held, not applied, no second gap.
    ready, gaps = seq.admit(recs(0, 9))
    assert ready == [] and gaps == []
    assert seq.until(0) == 9
    assert offsets(seq.held(0)) == [(0, 5), (0, 6), (0, 9)]

    # The direct read finds 2, 3 and 4 (faust lost them), 7 and 8 (lost too), and reads on.
    ready = seq.filled(0, recs(0, 2, 3, 4, 5, 6, 7, 8, 9, 10))
    assert [r.offset for r in ready] == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert seq.applied(0) == 10
    assert seq.held(0) == [] and seq.until(0) is None
    ready, gaps = seq.admit(recs(0, 9, 10, 11))  # faust catches up: only 11 is new
    assert offsets(ready) == [(0, 11)] and gaps == []


def test_a_compacted_gap_reads_nothing_and_applies_the_held_records() -> None:
    seq = ChangelogSequencer(lambda p: 3)
    _, gaps = seq.admit(recs(0, 8, 9))
    assert gaps == [Gap(0, 4, 7)]
    ready = seq.filled(0, recs(0, 8, 9))  # 4-7 were compacted away
    assert [r.offset for r in ready] == [8, 9]
    assert seq.applied(0) == 9


def test_a_gap_in_one_partition_does_not_hold_another() -> None:
    seq = ChangelogSequencer(lambda p: -1)
    ready, gaps = seq.admit(recs(0, 0, 2) + recs(1, 0, 1))
    assert offsets(ready) == [(0, 0), (1, 0), (1, 1)]
    assert gaps == [Gap(0, 1, 1)]


def test_filled_records_of_another_partition_are_ignored() -> None:
    seq = ChangelogSequencer(lambda p: -1)
    seq.admit(recs(0, 1))
    ready = seq.filled(0, recs(1, 0) + recs(0, 0))
    assert offsets(ready) == [(0, 0), (0, 1)]


def test_a_stalled_tail_is_a_gap_up_to_the_end() -> None:
    seq = ChangelogSequencer(lambda p: 4)
    assert seq.stalled(0, end_offset=5) is None  # applied up to the last record
    assert seq.stalled(0, end_offset=8) == Gap(0, 5, 7)
    assert seq.stalled(0, end_offset=8) is None  # already being read
    ready, _ = seq.admit(recs(0, 6))  # faust delivers part of it meanwhile: held
    assert ready == []
    ready = seq.filled(0, recs(0, 5, 6, 7))
    assert [r.offset for r in ready] == [5, 6, 7]


def test_passed_records_move_the_applied_offset_and_end_a_hold() -> None:
    seq = ChangelogSequencer(lambda p: 2)
    _, gaps = seq.admit(recs(0, 5))
    assert gaps == [Gap(0, 3, 4)]
    seq.passed(0, 7)  # the table wrote up to 7 itself
    assert seq.applied(0) == 7 and seq.held(0) == []
    seq.passed(0, 6)  # read back late: no step back
    assert seq.applied(0) == 7
    ready, gaps = seq.admit(recs(0, 8))
    assert offsets(ready) == [(0, 8)] and gaps == []
