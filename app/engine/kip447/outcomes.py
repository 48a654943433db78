"""What the coordinator's answers mean: the group metadata a commit carries, the errors this
module raises, and what each error code of TxnOffsetCommit v3 and OffsetFetch v7 calls for.

Pure functions and values only, so that every code is tested without a broker. The mapping
follows Kafka's Java producer (``TransactionManager.TxnOffsetCommitHandler``) and consumer
(``ConsumerCoordinator.OffsetFetchResponseHandler``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aiokafka.errors import KafkaError, for_code

from app.engine.kip447.protocol import NO_GENERATION, NO_MEMBER_ID

# Codes aiokafka 0.14 does not know (it turns them into UnknownError).
FENCED_INSTANCE_ID = 82
UNSTABLE_OFFSET_COMMIT = 88
PRODUCER_FENCED = 90

# Kafka's error names for the codes this module answers by name.
ERROR_NAMES = {
    3: "UNKNOWN_TOPIC_OR_PARTITION",
    7: "REQUEST_TIMED_OUT",
    14: "COORDINATOR_LOAD_IN_PROGRESS",
    15: "COORDINATOR_NOT_AVAILABLE",
    16: "NOT_COORDINATOR",
    22: "ILLEGAL_GENERATION",
    25: "UNKNOWN_MEMBER_ID",
    29: "TOPIC_AUTHORIZATION_FAILED",
    30: "GROUP_AUTHORIZATION_FAILED",
    47: "INVALID_PRODUCER_EPOCH",
    51: "CONCURRENT_TRANSACTIONS",
    53: "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    FENCED_INSTANCE_ID: "FENCED_INSTANCE_ID",
    UNSTABLE_OFFSET_COMMIT: "UNSTABLE_OFFSET_COMMIT",
    PRODUCER_FENCED: "PRODUCER_FENCED",
}


def error_name(code: int) -> str:
    """Kafka's name for ``code``, or aiokafka's when this module has none of its own."""
    if code in ERROR_NAMES:
        return ERROR_NAMES[code]
    return getattr(for_code(code), "message", f"ERROR_{code}")


@dataclass(frozen=True, slots=True)
class GroupMetadata:
    """A consumer group member as the group coordinator knows it: what KIP-447 fences on.

    ``group_instance_id`` is set for static members only (aiokafka's ``group_instance_id``).
    """

    group_id: str
    generation_id: int
    member_id: str
    group_instance_id: str | None = None

    @property
    def is_member(self) -> bool:
        """Whether this is a member of a generation. A commit without one (generation -1,
        empty member id) is not checked by the coordinator at all: it would not be fenced."""
        return self.generation_id != NO_GENERATION and self.member_id != NO_MEMBER_ID


class GenerationFenced(KafkaError):
    """The group coordinator refused a transaction's offsets: the member that read them is
    no longer the owner (a newer generation, a member that left or was removed, or a static
    member replaced by another instance). The transaction can only be aborted; its input is
    read again by whoever owns the partitions now."""

    retriable = False

    def __init__(self, group: GroupMetadata, reason: str) -> None:
        super().__init__(
            f"offsets of group {group.group_id} refused for generation {group.generation_id}, "
            f"member {group.member_id!r}: {reason}"
        )
        self.group = group
        self.reason = reason


class UnstableOffsets(KafkaError):
    """Committed offsets still pending in an open transaction after the time allowed."""

    retriable = True

    def __init__(self, group_id: str, partitions: list[str], waited_s: float) -> None:
        super().__init__(
            f"group {group_id}: offsets of {', '.join(partitions)} still pending in an open "
            f"transaction after {waited_s:.1f}s (UNSTABLE_OFFSET_COMMIT)"
        )
        self.group_id = group_id
        self.partitions = partitions


class Outcome(Enum):
    DONE = "done"
    RETRY = "retry"  # the same coordinator, after a backoff
    NEW_COORDINATOR = "new coordinator"  # look the coordinator up again, then retry
    UNSTABLE = "unstable"  # an open transaction holds the offset: retry after a backoff
    FENCED = "fenced"  # GenerationFenced: the transaction must be aborted
    ABORTABLE = "abortable"  # another refusal the transaction can only be aborted after
    PRODUCER_FENCED = "producer fenced"  # a newer producer holds the transactional id
    FATAL = "fatal"  # unexpected: the producer (or the fetch) cannot go on


_NEW_COORDINATOR = frozenset({7, 15, 16})  # REQUEST_TIMED_OUT as the Java producer does
_GENERATION = frozenset({22, 25, FENCED_INSTANCE_ID})


def _retriable(code: int) -> bool:
    return bool(getattr(for_code(code), "retriable", False))


def commit_outcome(code: int) -> Outcome:
    """What a partition's error code in a TxnOffsetCommit v3 answer calls for."""
    if code == 0:
        return Outcome.DONE
    if code in _NEW_COORDINATOR:
        return Outcome.NEW_COORDINATOR
    if code in _GENERATION:
        return Outcome.FENCED
    if code == 30:  # GROUP_AUTHORIZATION_FAILED
        return Outcome.ABORTABLE
    if code in (47, PRODUCER_FENCED):
        return Outcome.PRODUCER_FENCED
    # COORDINATOR_LOAD_IN_PROGRESS, UNKNOWN_TOPIC_OR_PARTITION, CONCURRENT_TRANSACTIONS (the
    # previous transaction's offsets still being completed), and whatever else is retriable.
    if code in (3, 14, 51) or _retriable(code):
        return Outcome.RETRY
    return Outcome.FATAL


def fetch_outcome(code: int) -> Outcome:
    """What an error code in an OffsetFetch v7 answer (top level or partition) calls for."""
    if code == 0:
        return Outcome.DONE
    if code == UNSTABLE_OFFSET_COMMIT:
        return Outcome.UNSTABLE
    if code in _NEW_COORDINATOR:
        return Outcome.NEW_COORDINATOR
    if code == 14 or (_retriable(code) and code != 3):
        return Outcome.RETRY
    # UNKNOWN_TOPIC_OR_PARTITION (the Java consumer's "does not exist"), authorization
    # failures, GROUP_ID_NOT_FOUND and anything unexpected.
    return Outcome.FATAL
