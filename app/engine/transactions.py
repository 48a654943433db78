"""Atomic publication of one commit round of a stage: the changelog records, outputs and dead
letters of every partition in it, and the consumer group's input offsets of those partitions,
in one Kafka transaction, by the stage's one transactional producer (KIP-447).

The offsets are committed under the group metadata of the consumer that read the input
(``app.engine.kip447``): a worker that is no longer the group member it was (a zombie, paused
past its session timeout) has its round refused by the group coordinator, and aborted. The
transactional id is the stage's on this worker, the same across restarts of it
(``app.engine.identity``): a restart fences its previous run's producer, whose open
transaction is aborted.

A failed commit is one of three kinds (``classify``):

- fenced: the group refused the round's offsets (``GenerationFenced``: another generation,
  another member), or a newer producer of the same id exists, or the coordinator aborted the
  transaction (kept open past ``TRANSACTION_TIMEOUT_MS``); the caller drops the round's work
  (``Fenced``).
- transient: broker restarts, timeouts, a moved leader, a producer left in a bad state. Retried
  with a fresh producer and backoff for as long as it takes, each try logged.
- refused: the broker (or this writer, before sending) gives the same answer to the same bytes
  or the same credentials every time: a record over the topic's ``max.message.bytes`` or the
  producer's ``max_request_size``, an invalid record, missing authorization. A retry would stall
  the partition for ever, so the commit raises ``OutputRefused`` naming ``topic[partition]``
  and the size, and the worker exits (``app.engine.runner.fatal``) with nothing committed:
  the next start replays the batch, which commits once the cause (topic config, ACLs) is
  fixed. This is Kafka Streams' default ProductionExceptionHandler (FAIL): nothing is skipped.
  Outputs are sized so that input cannot cause it: views-by-user records have a byte budget
  (``app.stages.by_user``), dead-letter topics hold any record their input topic can hold
  plus the ``dlq.*`` headers (``app.topics``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enum import Enum
from itertools import repeat

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    GroupAuthorizationFailedError,
    IllegalOperation,
    InvalidRequiredAcksError,
    InvalidTimestampError,
    InvalidTopicError,
    KafkaError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownError,
    UnsupportedForMessageFormatError,
)

from app.engine.kip447 import (
    GenerationFenced,
    GroupMetadata,
    UnsupportedByBroker,
    send_offsets_to_transaction,
)
from app.engine.retry import TRANSIENT, retry

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 512 * 1024
_NO_HEADERS: list = []  # a changelog record's headers, shared (aiokafka wants a list, reads it)

# How long the transaction coordinator keeps a round's transaction open before it aborts it
# itself. A round lasts milliseconds; this bounds how long a crashed worker's open
# transaction holds back read_committed readers and the partitions' next owners.
TRANSACTION_TIMEOUT_MS = 10_000

# A commit that took longer than this went through a broker outage or restart; one more
# transaction over its partitions, without records, follows it (``TransactionalWriter.commit``).
SLOW_COMMIT_S = 5.0

# The wait before a retried request. A partition commits often, so its next transaction
# usually starts while the broker still writes the markers of the previous one; the broker
# answers that transaction's first requests "try again" (CONCURRENT_TRANSACTIONS, which
# Kafka 4 sends to older producers as NOT_ENOUGH_REPLICAS): aiokafka's default of 100 ms was
# most of a commit (docs/measurements.md). 20 ms is what aiokafka itself waits after
# CONCURRENT_TRANSACTIONS on AddPartitionsToTxn.
RETRY_BACKOFF_MS = 20

# Whatever the step: the same credentials get the same answer.
REFUSED_ALWAYS: tuple[type[BaseException], ...] = (
    AuthenticationFailedError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
# A produced batch's answers: the same bytes get the same answer. aiokafka turns a code it does
# not know, INVALID_RECORD (87) among them, into UnknownError (Kafka's Java client does not
# retry UNKNOWN_SERVER_ERROR either).
REFUSED_BATCH: tuple[type[BaseException], ...] = (
    *REFUSED_ALWAYS,
    CorruptRecordException,
    InvalidRequiredAcksError,
    InvalidTimestampError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    PolicyViolationError,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnknownError,
    UnsupportedForMessageFormatError,
)


class Fenced(Exception):
    """The round may not commit (see ``classify``): its work must be dropped."""


class OutputRefused(Exception):
    """A batch of ``topic[partition]`` was refused for good (see the module docstring)."""

    def __init__(
        self, topic: str, partition: int, size: int, records: int, cause: BaseException
    ) -> None:
        super().__init__(
            f"{topic}[{partition}]: a batch of {records} records, {size} bytes, "
            f"refused: {cause!r}"
        )
        self.topic = topic
        self.partition = partition
        self.size = size
        self.records = records
        self.cause = cause

    @property
    def error(self) -> str:
        return type(self.cause).__name__


# What a commit attempt may fail with; ``classify`` tells what each one calls for.
# AssertionError: aiokafka's transaction manager in FATAL_ERROR (an invalid state transition).
# IllegalOperation ("Can't send messages while not in transaction", not a KafkaError): an
# earlier request of the transaction failed while a broker restarted and put aiokafka's
# transaction manager in ABORTABLE_ERROR; a fresh producer starts clean.
COMMIT_ERRORS: tuple[type[BaseException], ...] = (
    *TRANSIENT, OutputRefused, AssertionError, IllegalOperation
)


class Failure(Enum):
    FENCED = "fenced"
    TRANSIENT = "transient"
    REFUSED = "refused"


def classify(exc: BaseException) -> Failure:
    """What a failed commit attempt calls for (see the module docstring).

    Only known refusals end the retries: an error not listed here (aiokafka's transaction
    manager raises several after a broker restart) is retried with a fresh producer, which
    either recovers or finds itself fenced.
    """
    if isinstance(exc, (ProducerFenced, GenerationFenced)):
        return Failure.FENCED
    if isinstance(exc, (OutputRefused, UnsupportedByBroker, *REFUSED_ALWAYS)):
        return Failure.REFUSED
    return Failure.TRANSIENT


def refuses_batch(exc: BaseException) -> bool:
    """Whether a produced batch's error means the broker will never take it."""
    return isinstance(exc, REFUSED_BATCH)


@dataclass(slots=True)
class Outbox:
    """Records waiting for the next commit, grouped by (topic, partition): ``records`` added one
    by one with their headers, and ``writes``, a changelog's keyed writes.

    A changelog is compacted and restored in order, so within one transaction only the last
    value of a key matters: ``writes`` holds that value per key, as the store's pending writes
    do, and is sent from that dict as it is. Copying them into a list of records first cost
    more than encoding them (``Outbox.extend`` was 14 % of a worker's profile, most of it the
    garbage collector walking the records kept until the commit: docs/measurements.md).
    """

    records: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, list]]] = field(
        default_factory=dict
    )
    writes: dict[tuple[str, int], dict[bytes, bytes | None]] = field(default_factory=dict)

    def add(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        bucket = self.records.get((topic, partition))
        if bucket is None:
            bucket = self.records[(topic, partition)] = []
        bucket.append((key, value, headers or []))

    def extend(
        self,
        topic: str,
        partition: int,
        writes: Mapping[bytes, bytes | None] | Iterable[tuple[bytes, bytes | None]],
    ) -> None:
        """Add keyed records without headers, the last value of each key only (a changelog's
        writes; None deletes). A dict is kept as it is, not copied: it must not change
        afterwards (a store's sealed writes do not)."""
        tp = (topic, partition)
        new = writes if isinstance(writes, dict) else dict(writes)
        current = self.writes.get(tp)
        self.writes[tp] = new if current is None else {**current, **new}

    @classmethod
    def merged(cls, outboxes: Iterable[Outbox]) -> Outbox:
        """One outbox with the records of ``outboxes`` (a round's partitions), each
        (topic, partition)'s in the order the outboxes and their records come."""
        merged = cls()
        for outbox in outboxes:
            for tp, bucket in outbox.records.items():
                merged.records.setdefault(tp, []).extend(bucket)
            for (topic, partition), writes in outbox.writes.items():
                merged.extend(topic, partition, writes)
        return merged

    def partitions(self) -> list[tuple[str, int]]:
        """Every (topic, partition) with something to send."""
        return [*self.records, *(tp for tp in self.writes if tp not in self.records)]

    def __len__(self) -> int:
        return sum(map(len, self.records.values())) + sum(map(len, self.writes.values()))

    def clear(self) -> None:
        self.records = {}
        self.writes = {}


class TransactionalWriter:
    """Commits rounds of one stage by one transactional producer; retries transient failures
    until they pass."""

    def __init__(
        self,
        transactional_id: str,
        client_kwargs: dict[str, Any],
        max_request_size: int = 2 * MAX_BATCH_BYTES,
    ) -> None:
        """``max_request_size``: the largest batch sent, one record alone included (the
        largest ``max.message.bytes`` of the topics written: the dead-letter topic's)."""
        self.transactional_id = transactional_id
        self._client_kwargs = client_kwargs
        self._max_request_size = max(max_request_size, MAX_BATCH_BYTES)
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def start(self) -> None:
        """Start the producer unless it runs (which fences this id's older producers: a
        previous run of this worker). Raises what refuses it (a missing ACL) at once."""
        async with self._starting:
            if self._producer is not None:
                return
            producer = AIOKafkaProducer(
                transactional_id=self.transactional_id,
                transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
                enable_idempotence=True,
                acks="all",
                linger_ms=0,
                max_batch_size=MAX_BATCH_BYTES,
                max_request_size=self._max_request_size,
                request_timeout_ms=30_000,
                retry_backoff_ms=RETRY_BACKOFF_MS,
                **self._client_kwargs,
            )
            try:
                await producer.start()
            except BaseException:
                await self._discard(producer)
                raise
            self._producer = producer

    async def stop(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await self._discard(producer)

    async def _discard(self, producer: AIOKafkaProducer) -> None:
        try:
            await producer.stop()
        except (KafkaError, OSError, RuntimeError) as exc:
            # A fenced or broken producer may fail to stop cleanly; with the broker gone,
            # aiokafka's metadata task can even write to a closed uvloop transport
            # (RuntimeError). It is discarded either way: that must not end the worker.
            log.debug("producer %s stopped with an error: %r", self.transactional_id, exc)

    async def commit(
        self,
        outbox: Outbox,
        changelog_topic: str,
        source_offsets: dict[TopicPartition, int],
        group: GroupMetadata | str,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> dict[int, int]:
        """Publish ``outbox`` and commit the consumer group's ``source_offsets``, atomically.

        ``group``: the metadata of the group member that read the input, whose generation
        the coordinator checks (KIP-447); a group id alone for a group without members (a
        replay's start). Returns the last offset written to each partition of
        ``changelog_topic``.

        Transient failures (broker restarts, timeouts) are retried with a fresh producer,
        as long as it takes. Raises ``Fenced`` when the round may not commit (the
        transaction is aborted), and OutputRefused (or the authorization error) when the
        broker refuses for good. ``on_error`` sees every failed attempt (what a stalled
        commit waits on).

        A commit that took longer than ``SLOW_COMMIT_S`` is followed by a transaction of the
        same producer over the same partitions and input offsets, without records
        (``_mark_once``). A broker that shuts down while it writes a transaction's commit
        markers can restart with the transaction complete yet some of its partitions never
        marked (seen with Kafka 4.4: "Couldn't find leader endpoint" for them during the
        controlled shutdown). Those partitions hold the producer's transaction open for good:
        ``read_committed`` readers stop there, and the input offset is never committed. The
        commit markers of the next transaction of the same producer on those partitions close
        it, and nothing is written twice.
        """
        started = time.monotonic()
        offsets = await self._with_retries(
            lambda: self._commit_once(outbox, changelog_topic, source_offsets, group), on_error
        )
        took = time.monotonic() - started
        if took > SLOW_COMMIT_S:
            log.warning(
                "transaction %s took %.1fs (brokers restarting?): marking its partitions once "
                "more, to close what a restarting broker may have left open",
                self.transactional_id, took,
            )
            partitions = [TopicPartition(topic, p) for topic, p in outbox.partitions()]
            await self._with_retries(
                lambda: self._mark_once(partitions, source_offsets, group), on_error
            )
        return offsets

    async def _with_retries(
        self,
        once: Callable[[], Awaitable[Any]],
        on_error: Callable[[BaseException], None] | None,
    ) -> Any:

        async def attempt() -> Any:
            try:
                return await once()
            except COMMIT_ERRORS as exc:
                if on_error is not None:
                    on_error(exc)
                # Whatever the failure, this producer is done: a new one (same transactional
                # id) starts clean, and a fenced round is over (aborted by the producer, or by
                # the next one's start).
                await self.stop()
                if classify(exc) is Failure.FENCED:
                    raise Fenced(f"transaction {self.transactional_id}: {exc}") from exc
                raise

        async def restart(exc: BaseException) -> None:
            try:
                await self.start()
            except ProducerFenced as fenced:
                raise Fenced(f"transaction {self.transactional_id}: {fenced}") from fenced
            except (KafkaError, OSError) as start_exc:
                if classify(start_exc) is Failure.REFUSED:
                    log.error("producer %s refused for good: %r", self.transactional_id, start_exc)
                    raise
                # The next attempt starts a producer again.
                if on_error is not None:
                    on_error(start_exc)
                log.warning("producer %s restart failed: %r", self.transactional_id, start_exc)

        return await retry(
            attempt,
            f"transaction {self.transactional_id}",
            retriable=COMMIT_ERRORS,
            refused=lambda exc: classify(exc) is Failure.REFUSED,
            before_retry=restart,
        )

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            await self.start()
        producer = self._producer
        assert producer is not None
        return producer

    async def _mark_once(
        self,
        partitions: list[TopicPartition],
        source_offsets: dict[TopicPartition, int],
        group: GroupMetadata | str,
    ) -> None:
        """A transaction over ``partitions`` and the input offsets, without records: its
        commit markers go to every partition added to it, written to or not. aiokafka adds a
        partition only as a record is sent to it; its transaction manager is asked directly
        here (the one use of its internals outside ``app.engine.kip447``, aiokafka 0.14)."""
        producer = await self._started()
        await producer.begin_transaction()
        try:
            for tp in partitions:
                producer._txn_manager.maybe_add_partition_to_txn(tp)  # noqa: SLF001
            await _send_offsets(producer, source_offsets, group)
        except BaseException:
            await _abort_quietly(producer)
            raise
        await producer.commit_transaction()

    async def _commit_once(
        self,
        outbox: Outbox,
        changelog_topic: str,
        source_offsets: dict[TopicPartition, int],
        group: GroupMetadata | str,
    ) -> dict[int, int]:
        producer = await self._started()
        changelog_offsets: dict[int, int] = {}
        await producer.begin_transaction()
        try:
            deliveries = []
            limit = self._max_request_size
            sends = [
                *((tp, _batches(producer, records, tp, limit))
                  for tp, records in outbox.records.items()),
                *((tp, _batches(producer, zip(writes, writes.values(), repeat(_NO_HEADERS)),
                                tp, limit))
                  for tp, writes in outbox.writes.items()),
            ]
            for (topic, partition), batches in sends:
                for batch in batches:
                    size, count = batch.size(), batch.record_count()
                    fut = await producer.send_batch(batch, topic, partition=partition)
                    deliveries.append((topic, partition, size, count, fut))
            # The offsets go to the transaction coordinator while the records are in flight
            # (one round trip saved); the commit waits for both.
            offsets = asyncio.ensure_future(_send_offsets(producer, source_offsets, group))
            try:
                for topic, partition, size, count, fut in deliveries:
                    try:
                        metadata = await fut
                    except KafkaError as exc:
                        if refuses_batch(exc):
                            raise OutputRefused(topic, partition, size, count, exc) from exc
                        raise
                    if topic == changelog_topic:
                        last = changelog_offsets.get(partition, -1)
                        changelog_offsets[partition] = max(last, metadata.offset)
            finally:
                await asyncio.wait([offsets])
                error = offsets.exception()  # retrieved even when a delivery failed first
            if error is not None:
                raise error
        except BaseException:
            await _abort_quietly(producer)
            raise
        await producer.commit_transaction()
        return changelog_offsets


async def write_once(
    transactional_id: str,
    client_kwargs: dict[str, Any],
    outbox: Outbox,
    source_offsets: dict[TopicPartition, int],
    group_id: str,
    max_request_size: int = 2 * MAX_BATCH_BYTES,
) -> None:
    """``outbox`` and the offsets of a group without members (none, or some) in one
    transaction, by a writer of its own: what a command commits (a replay's start, a
    promotion), retried as a stage's round is. Its start fences an earlier run of the same id."""
    writer = TransactionalWriter(transactional_id, client_kwargs, max_request_size)
    await writer.start()
    try:
        await writer.commit(outbox, "", source_offsets, group_id)
    finally:
        await writer.stop()


async def _send_offsets(
    producer: AIOKafkaProducer,
    offsets: dict[TopicPartition, int],
    group: GroupMetadata | str,
) -> None:
    """The round's input offsets, fenced by the group's generation (KIP-447); with a group id
    alone, aiokafka's own commit (a group without members), if any."""
    if isinstance(group, str):
        if offsets:
            await producer.send_offsets_to_transaction(offsets, group)
    else:
        await send_offsets_to_transaction(producer, offsets, group)


def _batches(
    producer: AIOKafkaProducer,
    records: Iterable[tuple[bytes | None, bytes | None, list]],
    tp: tuple[str, int],
    max_bytes: int,
) -> list:
    """``records`` (key, value, headers) in batches of at most MAX_BATCH_BYTES, or of one
    larger record.

    aiokafka takes a record of any size into an empty batch, and ``send_batch`` checks no
    limit: a record over ``max_bytes`` is refused here, before anything is sent (the broker
    would refuse it, or drop the connection over a request too large, which looks transient).
    Only a batch's first record can be larger than MAX_BATCH_BYTES (<= ``max_bytes``): a
    record that fits into a batch with others is smaller than that, so only first records
    are measured.
    """
    batches = []
    batch = producer.create_batch()
    first = True
    for key, value, headers in records:
        if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
            batches.append(batch)
            batch = producer.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=headers)
            first = True
        if first:
            first = False
            if batch.size() > max_bytes:
                raise OutputRefused(
                    *tp,
                    batch.size(),
                    1,
                    RecordTooLargeError(
                        f"over the producer's max_request_size of {max_bytes} bytes"
                    ),
                )
    if batch.record_count():
        batches.append(batch)
    return batches


async def _abort_quietly(producer: AIOKafkaProducer) -> None:
    """Best effort: the original error is what the caller handles.

    A producer in aiokafka's FATAL_ERROR state (fenced, or a connection lost mid-commit)
    answers abort with an AssertionError (invalid state transition); that must not replace
    the error that tells fenced from retriable.
    """
    try:
        await producer.abort_transaction()
    except Exception:  # noqa: BLE001
        log.debug("abort after a failed transaction also failed", exc_info=True)
