"""Every use of aiokafka's (and faust's) internals by this package, in one place.

aiokafka 0.14's producer sends a transaction's offsets with TxnOffsetCommit v0, built in its
sender's ``_do_txn_offset_commit``. This module makes one producer send v3 instead, for the
offsets queued with group metadata, and leaves everything else to aiokafka:

- the offsets go into the transaction manager's own queue (``add_offsets_to_txn``), so the
  sender sends AddOffsetsToTxn to the transaction coordinator first, after the partitions
  of records sent earlier, and before EndTxn: the same order, coordinator look-ups and
  backoffs as ``AIOKafkaProducer.send_offsets_to_transaction``;
- the offsets dict carries the group metadata (``_GroupOffsets``); the producer's sender
  gets a ``_do_txn_offset_commit`` of its own (``install``) that sends those with
  ``TxnOffsetCommitV3Handler`` and hands any other offsets to aiokafka's;
- the handler runs in the sender's one transactional task, as aiokafka's does, so it may
  change the transaction manager's state: a refused generation puts the transaction in
  ABORTABLE_ERROR (``_abortable``), which makes ``commit_transaction`` raise and leaves
  ``abort_transaction`` as the only way on.

``_abortable`` also works around an aiokafka bug: its ``error_transaction`` forgets the
partitions and group already added to the transaction, so the abort that follows sends no
EndTxn and the broker's transaction stays open; the producer's next transaction then carries
on the same one, and the records of the round meant to be aborted commit with it. The
partitions and group are kept here so that the abort reaches the broker
(``tests/integration/test_kip447.py::test_a_stale_generation_is_refused_and_nothing_commits``).

What this touches, all of aiokafka 0.14 unless said (listed in docs/internals.md):
``AIOKafkaProducer._txn_manager``, ``._sender``; ``Sender._do_txn_offset_commit``,
``._find_coordinator``, ``._coordinator_dead``, ``._retry_backoff``; the sender's
``BaseHandler``; ``TransactionManager.add_offsets_to_txn``, ``.offset_committed``,
``.error_transaction``, ``._txn_partitions``, ``._txn_consumer_group``;
``AIOKafkaConsumer._coordinator`` (``.group_id``, ``.generation``, ``.member_id``,
``._group_instance_id``); faust's ``Consumer._thread._consumer``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.client import ConnectionGroup, CoordinationType
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    IllegalOperation,
    ProducerFenced,
    for_code,
)
from aiokafka.producer.sender import BaseHandler
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from app.engine.kip447.outcomes import (
    GenerationFenced,
    GroupMetadata,
    Outcome,
    commit_outcome,
    error_name,
)
from app.engine.kip447.protocol import TxnOffsetCommitWithGeneration, UnsupportedByBroker

log = logging.getLogger(__name__)

_INSTALLED = "_kip447_installed"


class _GroupOffsets(dict):
    """The offsets of one ``send_offsets_to_transaction`` call, with the group metadata they
    are committed under. A dict, as aiokafka's transaction manager expects (it deletes each
    partition as the coordinator accepts it)."""

    def __init__(self, offsets: dict[TopicPartition, OffsetAndMetadata], group: GroupMetadata):
        super().__init__(offsets)
        self.group = group


def queue_offsets(
    producer: AIOKafkaProducer,
    offsets: dict[TopicPartition, OffsetAndMetadata],
    group: GroupMetadata,
) -> asyncio.Future:
    """Queue ``offsets`` in the producer's open transaction; the future ends when the group
    coordinator accepted them all, or with the error that ended the transaction."""
    txn_manager = producer._txn_manager  # noqa: SLF001
    if txn_manager is None or txn_manager.transactional_id is None:
        raise IllegalOperation("the producer has no transactional_id")
    if not txn_manager.is_in_transaction():
        raise IllegalOperation("Not in the middle of a transaction")
    install(producer)
    return txn_manager.add_offsets_to_txn(_GroupOffsets(offsets, group), group.group_id)


def install(producer: AIOKafkaProducer) -> None:
    """Make the producer's sender commit offsets queued with group metadata with TxnOffsetCommit
    v3 (once per producer; aiokafka's own path stays for any other offsets)."""
    sender = producer._sender  # noqa: SLF001
    if getattr(sender, _INSTALLED, False):
        return
    aiokafka_commit = sender._do_txn_offset_commit  # noqa: SLF001

    async def do_txn_offset_commit(offsets: dict, group_id: str) -> None:
        group = getattr(offsets, "group", None)
        if group is None:
            await aiokafka_commit(offsets, group_id)
        else:
            await _commit_with_generation(sender, offsets, group)

    sender._do_txn_offset_commit = do_txn_offset_commit  # noqa: SLF001
    setattr(sender, _INSTALLED, True)


async def _commit_with_generation(
    sender: Any, offsets: _GroupOffsets, group: GroupMetadata
) -> None:
    """One attempt, run as the sender's transactional task; the sender runs it again after
    the backoff the handler returns, for the offsets not yet accepted."""
    txn_manager = sender._txn_manager  # noqa: SLF001
    if not group.is_member:
        _abortable(txn_manager, GenerationFenced(group, "not a member of a generation"))
        return
    try:
        find = sender._find_coordinator  # noqa: SLF001
        node_id = await find(CoordinationType.GROUP, group.group_id)
    except GroupAuthorizationFailedError as exc:
        _abortable(txn_manager, exc)
        return
    try:
        await TxnOffsetCommitV3Handler(sender, offsets, group).do(node_id)
    except UnsupportedByBroker as exc:
        log.error("%s", exc)
        _abortable(txn_manager, exc)


def _abortable(txn_manager: Any, exc: BaseException) -> None:
    """ABORTABLE_ERROR, keeping what the abort must end on the broker (module docstring)."""
    partitions = set(txn_manager._txn_partitions)  # noqa: SLF001
    consumer_group = txn_manager._txn_consumer_group  # noqa: SLF001
    txn_manager.error_transaction(exc)
    txn_manager._txn_partitions.update(partitions)  # noqa: SLF001
    txn_manager._txn_consumer_group = consumer_group  # noqa: SLF001
    # The caller learns of it from its own call; a round aborted without trying to commit
    # would otherwise leave asyncio's "exception was never retrieved" in the log.
    txn_manager.wait_for_transaction_end().exception()


def _describe(offsets: dict[TopicPartition, OffsetAndMetadata]) -> str:
    return ", ".join(
        f"{tp.topic}[{tp.partition}]@{om.offset}" for tp, om in sorted(offsets.items())
    )


class TxnOffsetCommitV3Handler(BaseHandler):
    """aiokafka's ``TxnOffsetCommitHandler`` with the group metadata and its three errors."""

    group = ConnectionGroup.COORDINATION

    def __init__(self, sender: Any, offsets: _GroupOffsets, group: GroupMetadata) -> None:
        super().__init__(sender)
        self._offsets = offsets
        self._group = group

    def create_request(self) -> TxnOffsetCommitWithGeneration:
        txn_manager = self._sender._txn_manager  # noqa: SLF001
        topics: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for tp, offset in sorted(self._offsets.items()):
            topics[tp.topic].append((tp.partition, offset.offset, offset.metadata))
        log.debug(
            "transaction %s: committing %s for group %s, generation %d",
            txn_manager.transactional_id, _describe(self._offsets),
            self._group.group_id, self._group.generation_id,
        )
        return TxnOffsetCommitWithGeneration(
            transactional_id=txn_manager.transactional_id,
            group_id=self._group.group_id,
            producer_id=txn_manager.producer_id,
            producer_epoch=txn_manager.producer_epoch,
            generation_id=self._group.generation_id,
            member_id=self._group.member_id,
            group_instance_id=self._group.group_instance_id,
            topics=list(topics.items()),
        )

    def handle_response(self, resp: Any) -> float | None:
        """None when done (or the transaction was made abortable), else the backoff before the
        sender tries the offsets not accepted yet. Raising ends the producer, as aiokafka's
        handlers do for a fenced producer or an unexpected error."""
        txn_manager = self._sender._txn_manager  # noqa: SLF001
        for topic, partitions, _tags in resp.topics:
            for partition, code, _ptags in partitions:
                tp = TopicPartition(topic, partition)
                outcome = commit_outcome(code)
                if outcome is Outcome.DONE:
                    txn_manager.offset_committed(tp, self._offsets[tp].offset, self._group.group_id)
                elif outcome is Outcome.NEW_COORDINATOR:
                    self._sender._coordinator_dead(CoordinationType.GROUP)  # noqa: SLF001
                    return self._default_backoff
                elif outcome is Outcome.RETRY:
                    return self._default_backoff
                elif outcome is Outcome.FENCED:
                    log.warning(
                        "transaction %s: %s[%d] refused for group %s generation %d: %s",
                        txn_manager.transactional_id, topic, partition,
                        self._group.group_id, self._group.generation_id, error_name(code),
                    )
                    _abortable(txn_manager, GenerationFenced(self._group, error_name(code)))
                    return None
                elif outcome is Outcome.ABORTABLE:
                    _abortable(txn_manager, GroupAuthorizationFailedError(self._group.group_id))
                    return None
                elif outcome is Outcome.PRODUCER_FENCED:
                    raise ProducerFenced()
                else:
                    log.error(
                        "transaction %s: %s[%d] offset commit failed: %s",
                        txn_manager.transactional_id, topic, partition, error_name(code),
                    )
                    raise for_code(code)()
        return None

    def handle_error(self) -> float:
        self._sender._coordinator_dead(CoordinationType.GROUP)  # noqa: SLF001
        return self._default_backoff


def consumer_group_metadata(consumer: AIOKafkaConsumer) -> GroupMetadata:
    """The group metadata of an aiokafka consumer that subscribed with a group (Java's
    ``KafkaConsumer.groupMetadata()``). Read at commit time: the generation of the
    consumer now, which the coordinator compares with its own.

    Read from another thread (faust's consumer runs on one of its own) the three values may
    come from both sides of a rebalance; any such mix is refused by the coordinator (or by
    ``GroupMetadata.is_member``), never accepted."""
    coordinator = getattr(consumer, "_coordinator", None)
    if coordinator is None:
        raise IllegalOperation("the consumer has no group coordinator: no group_id, or not started")
    return GroupMetadata(
        group_id=coordinator.group_id,
        generation_id=coordinator.generation,
        member_id=coordinator.member_id,
        group_instance_id=coordinator._group_instance_id,  # noqa: SLF001
    )


def faust_group_metadata(app: faust.App) -> GroupMetadata:
    """The group metadata of faust's consumer (its aiokafka consumer, on faust's consumer
    thread). ``app.consumer_generation_id`` is faust's copy of the generation alone."""
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    if consumer is None:
        raise IllegalOperation("faust's consumer has not started")
    return consumer_group_metadata(consumer)
