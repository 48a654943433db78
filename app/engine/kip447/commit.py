"""A transaction's input offsets, committed under the consumer group's generation (KIP-447).

``send_offsets_to_transaction(producer, offsets, group)`` is
``AIOKafkaProducer.send_offsets_to_transaction(offsets, group_id)`` with the group's metadata
instead of its id alone, as Java's ``sendOffsetsToTransaction(offsets, groupMetadata)``:

1. AddOffsetsToTxn to the transaction coordinator (the group's offsets partition joins the
   transaction), by aiokafka's sender as for its own call;
2. TxnOffsetCommit v3 to the group coordinator, with the generation, member id and group
   instance id; retried on COORDINATOR_LOAD_IN_PROGRESS, NOT_COORDINATOR,
   COORDINATOR_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, REQUEST_TIMED_OUT and
   CONCURRENT_TRANSACTIONS (``outcomes.commit_outcome``);
3. ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID or FENCED_INSTANCE_ID (or metadata that is not a
   member's): ``GenerationFenced``. The transaction is then in aiokafka's ABORTABLE_ERROR
   state: ``commit_transaction`` raises the same error, and the caller must
   ``abort_transaction``, which aborts what the round wrote, on the broker too.

A broker without TxnOffsetCommit v3 (before Kafka 2.5) fails the call with
``UnsupportedByBroker`` (the transaction is abortable, as above), never a silent v0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from app.engine.kip447.aiokafka_hooks import queue_offsets
from app.engine.kip447.outcomes import GroupMetadata


async def send_offsets_to_transaction(
    producer: AIOKafkaProducer,
    offsets: Mapping[TopicPartition, int | OffsetAndMetadata | tuple[int, str]],
    group: GroupMetadata,
) -> None:
    """Commit ``offsets`` (the next offset to read, per partition) in ``producer``'s open
    transaction, fenced by ``group``'s generation. See the module docstring.

    Raises ``GenerationFenced``, ``UnsupportedByBroker`` or ``GroupAuthorizationFailedError``
    with the transaction left abortable; ``IllegalOperation`` outside a transaction;
    ``ValueError`` / ``TypeError`` for offsets that are not ``{TopicPartition: offset}``.
    """
    if not isinstance(group, GroupMetadata):
        raise TypeError(f"group must be a GroupMetadata, not {type(group).__name__}")
    await asyncio.shield(queue_offsets(producer, validated_offsets(offsets), group))


def validated_offsets(
    offsets: Mapping[TopicPartition, int | OffsetAndMetadata | tuple[int, str]],
) -> dict[TopicPartition, OffsetAndMetadata]:
    """``offsets`` as the transaction manager takes them, or ValueError / TypeError naming the
    first entry that is not ``TopicPartition: offset`` (a non-negative int, alone or with a
    metadata string)."""
    if not isinstance(offsets, Mapping):
        raise TypeError(f"offsets must be a mapping, not {type(offsets).__name__}")
    if not offsets:
        raise ValueError("no offsets to commit")
    checked = {}
    for tp, value in offsets.items():
        if not isinstance(tp, TopicPartition):
            raise TypeError(f"{tp!r} is not a TopicPartition")
        where = f"{tp.topic}[{tp.partition}]"
        if isinstance(value, tuple):
            if len(value) != 2:
                raise ValueError(f"{where}: {value!r} is not (offset, metadata)")
            offset, metadata = value
        else:
            offset, metadata = value, ""
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise TypeError(f"{where}: offset {offset!r} is not an integer")
        if not 0 <= offset < 2**63:
            raise ValueError(f"{where}: offset {offset} is negative or over 2^63 - 1")
        if not isinstance(metadata, str):
            raise TypeError(f"{where}: metadata {metadata!r} is not a string")
        try:
            metadata.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{where}: metadata {metadata!r} is not valid UTF-8") from exc
        checked[tp] = OffsetAndMetadata(offset, metadata)
    return checked
