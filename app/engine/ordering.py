"""Which records of one input partition a stage may apply, and when to seek back.

A stage's reader hands over a partition's records in offset order from where it was told to
read (``app.engine.reader``), but a fetch made before a seek or a reassignment can still
bring records from the old position. Applying a record past the next expected offset would
move the applied offset past the ones before it, which would then never be seen again. So a
record beyond the next expected offset (always for the first record after the partition
opens; for every record with ``check_gaps``) makes the stage seek back to the expected offset
and drop records until the re-read arrives, which starts at or below that record (offsets
between may be transaction markers or records of aborted transactions, so the first record
at or below it is accepted).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    APPLY = "apply"  # hand it to the processor (which skips offsets it already applied)
    SEEK = "seek"  # seek back to ``PartitionOrder.expected``, do not apply this one
    DROP = "drop"  # ahead of a pending re-read: it will come again
    REREAD = "reread"  # already seen since our seek: a duplicate we caused


@dataclass
class PartitionOrder:
    expected: int  # the next offset this partition should deliver
    check_gaps: bool = False  # seek on any gap (inputs written without transactions)
    fresh: bool = True  # no record seen since the partition opened
    resume_at: int | None = None  # waiting for the re-read to reach this offset
    sought: bool = False  # we have sought back since the partition opened

    @classmethod
    def opened(cls, applied_offset: int, check_gaps: bool) -> PartitionOrder:
        return cls(expected=applied_offset + 1, check_gaps=check_gaps)

    @classmethod
    def rewound(cls, expected: int, failed_at: int, check_gaps: bool) -> PartitionOrder:
        """After a rewind to ``expected`` from a record that failed at ``failed_at``: records
        fetched before the seek (beyond ``failed_at``) are dropped until the re-read, which
        starts at or below ``failed_at``, arrives."""
        return cls(expected=expected, check_gaps=check_gaps, fresh=False, resume_at=failed_at,
                   sought=True)

    def admit(self, offset: int) -> Verdict:
        if self.sought and offset < self.expected:
            return Verdict.REREAD
        if self.resume_at is not None:
            if offset > self.resume_at:
                return Verdict.DROP
            self.resume_at = None
        elif (self.fresh or self.check_gaps) and offset > self.expected:
            self.resume_at = offset
            self.sought = True
            return Verdict.SEEK
        self.fresh = False
        self.expected = max(self.expected, offset + 1)
        return Verdict.APPLY
