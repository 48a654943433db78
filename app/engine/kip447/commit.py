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
from aiokafka.util import commit_structure_validate

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
    if not offsets:
        raise ValueError("no offsets to commit")
    formatted = commit_structure_validate(dict(offsets))
    for tp, offset in formatted.items():
        if offset.offset < 0:
            raise ValueError(f"{tp.topic}[{tp.partition}]: offset {offset.offset} is negative")
    await asyncio.shield(queue_offsets(producer, formatted, group))
