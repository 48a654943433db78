"""The partitions of one source topic that this worker owns, each with its own state.

Opening a partition waits for its previous owner's last transaction to end (the group's
committed offset fetched with ``require_stable``, then the changelog restored to its end once
no transaction is open on it), then brings its RocksDB up to date from the changelog.
Committing seals the pending state, outputs, dead letters and input offset of every changed
partition, publishes them all in one transaction (the stage's, fenced by the group
generation: KIP-447), then writes RocksDB. A crash anywhere leaves changelog, outputs and
group offset at the last committed round, together; input at or below the stored
``applied`` offset is skipped should it be seen again. That is what makes every count exact
after any crash or rebalance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import TopicPartition
from rocksdict import Options

from app.engine.identity import stage_transactional_ids
from app.engine.kip447 import GroupMetadata
from app.engine.moved import Moved
from app.engine.processor import Processor
from app.engine.restore import restore_partition
from app.engine.retry import retry
from app.engine.stall import CommitWatch
from app.engine.takeover import stable_offset
from app.engine.store import PartitionStore
from app.engine.transactions import (
    MAX_BATCH_BYTES,
    Failure,
    Fenced,
    Outbox,
    TransactionalWriter,
    classify,
)

log = logging.getLogger(__name__)


ProcessorFactory = Callable[[int, PartitionStore, Outbox], Processor]


class OwnedPartitions:
    """Open, process, commit and close the owned partitions of ``source_topic``."""

    def __init__(
        self,
        *,
        name: str,
        app_id: str,
        source_topic: str,
        changelog_topic: str,
        data_dir: Path,
        rocksdb_options: Options,
        client_kwargs: dict[str, Any],
        factory: ProcessorFactory,
        transactional_id: Callable[[], str],
        max_request_size: int = 2 * MAX_BATCH_BYTES,
        watch: CommitWatch | None = None,
        on_fenced: Callable[[], None] | None = None,
    ) -> None:
        """``transactional_id``: gives the stage's producer's id on this worker
        (``app.engine.identity``), asked when the first partition opens. ``max_request_size``:
        the largest record the stage's writer may send (see ``TransactionalWriter``).
        ``watch`` sees every opening and commit while it waits on the brokers
        (``app.engine.stall``). ``on_fenced`` is called
        for each dead owner's transaction an opening fenced (``app.engine.takeover``)."""
        self.name = name
        self.source_topic = source_topic
        self.changelog_topic = changelog_topic
        self._data_dir = data_dir
        self._options = rocksdb_options
        self._client_kwargs = client_kwargs
        self._factory = factory
        self._max_request_size = max_request_size
        self._watch = watch or CommitWatch(float("inf"))
        self._on_fenced = on_fenced
        self._group_id = app_id
        self._transactional_id = transactional_id
        self._writer: TransactionalWriter | None = None
        self._open: dict[int, Processor] = {}
        self.lock = asyncio.Lock()
        # Notified whenever a partition's applied or committed offset moves, or it opens or
        # closes here: what a read that waits for a position (``atLeast``) waits on.
        self.moved = Moved()

    # -- ownership ----------------------------------------------------------------------
    @property
    def partitions(self) -> set[int]:
        return set(self._open)

    def store_path(self, partition: int) -> Path:
        """Where the partition's store lives on this worker (a standby copy uses it too)."""
        return self._data_dir / self.name / f"{partition:03d}"

    def processor(self, partition: int) -> Processor | None:
        return self._open.get(partition)

    async def open(self, partition: int) -> Processor:
        """The partition's processor, once its previous owner's transactions have ended and
        its state is restored.

        Broker trouble (a restart, a timeout) is retried until it passes: a worker rides out
        a broker restart instead of exiting. A refusal for good (missing authorization) is
        raised at once.
        """
        processor = self._open.get(partition)
        if processor is not None:
            return processor
        what = f"{self.name}: opening {self.source_topic}[{partition}]"
        with self._watch.watching(what) as failed:

            async def noted(exc: BaseException) -> None:
                failed(exc)

            processor = await retry(
                lambda: self._open_once(partition),
                what,
                refused=lambda exc: classify(exc) is Failure.REFUSED,
                before_retry=noted,
            )
        self._open[partition] = processor
        self.moved.notify()
        log.info(
            "%s: partition %d open, resuming after offset %d",
            self.name, partition, processor.applied_offset,
        )
        return processor

    async def _open_once(self, partition: int) -> Processor:
        # The stage's producer, started with the first partition: a missing transactional-id
        # ACL stops the worker as soon as it is given partitions, not at its first commit.
        await self.writer().start()
        # The previous owner is not fenced by this opening (KIP-447): a transaction of its
        # that commits this partition's offset may still be open. Wait until it has ended
        # (fenced at once once it is past its timeout: app.engine.takeover); the restore then
        # waits for its markers on the changelog.
        await stable_offset(
            self._client_kwargs, self._group_id, TopicPartition(self.source_topic, partition),
            changelog=TopicPartition(self.changelog_topic, partition),
            stage_ids=stage_transactional_ids(self._group_id, self.name),
            own_id=self.writer().transactional_id,
            on_fenced=self._on_fenced,
        )
        store = PartitionStore(self.store_path(partition), self._options)
        try:
            await restore_partition(store, self.changelog_topic, partition, self._client_kwargs)
        except BaseException:
            store.close()
            raise
        return self._factory(partition, store, Outbox())

    async def close(self, partitions: Iterable[int]) -> None:
        for partition in list(partitions):
            processor = self._open.pop(partition, None)
            if processor is None:
                continue
            processor.store.close()
            self.moved.notify()
            log.info("%s: partition %d closed", self.name, partition)

    def writer(self) -> TransactionalWriter:
        """The stage's transactional writer, made at first use."""
        if self._writer is None:
            self._writer = TransactionalWriter(
                self._transactional_id(), self._client_kwargs, self._max_request_size
            )
        return self._writer

    # -- a record that failed ---------------------------------------------------------------
    def rewind(self, partition: int) -> Processor:
        """Undo the partition's work since its last seal: its pending writes, outputs and the
        processor's own memory. The processor is made anew over the store as the last seal
        left it (sealed work, a commit in flight, stays); the caller reads the partition
        again from after the new processor's ``applied_offset``."""
        processor = self._open[partition]
        processor.store.rollback()
        fresh = self._factory(partition, processor.store, Outbox())
        self._open[partition] = fresh
        return fresh

    # -- commit -------------------------------------------------------------------------
    def seal(self, partition: int, now_ms: int) -> Sealed | None:
        """Take the partition's pending work for a commit; None if there is nothing to commit.

        Processing may go on meanwhile: its writes start a new pending set, read over the
        sealed one until that is committed (``PartitionStore.seal``).
        """
        processor = self._open.get(partition)
        if processor is None:
            return None
        if not processor.before_commit(now_ms):
            return None
        store, outbox = processor.store, processor.outbox
        outbox.extend(self.changelog_topic, partition, store.pending)
        processor.outbox = Outbox()
        store.seal()
        return Sealed(partition, outbox, processor.applied_offset + 1)

    async def commit(self, sealed: list[Sealed], group: GroupMetadata) -> set[int]:
        """Commit a round's sealed work in one transaction, under ``group`` (the group member
        that read its input), then write it to RocksDB. Returns the round's partitions if it
        was fenced: all their uncommitted work (sealed and pending) is dropped, and the
        caller closes them; otherwise nothing.
        """
        if not sealed:
            return set()
        partitions = sorted(work.partition for work in sealed)
        source = {TopicPartition(self.source_topic, w.partition): w.source_offset for w in sealed}
        what = f"{self.name}: commit of {_names(self.source_topic, partitions)}"
        merged = Outbox.merged(work.outbox for work in sealed)
        try:
            with self._watch.watching(what) as failed:
                offsets = await self.writer().commit(
                    merged, self.changelog_topic, source, group, on_error=failed
                )
        except Fenced as exc:
            log.warning(
                "%s: round of %s fenced (%s); dropping its uncommitted work",
                self.name, _names(self.source_topic, partitions), exc,
            )
            for partition in partitions:
                processor = self._open.get(partition)
                if processor is not None:
                    processor.store.discard_pending()
                    processor.outbox.clear()
            return set(partitions)
        for partition in partitions:
            processor = self._open.get(partition)
            if processor is not None:
                processor.store.apply_sealed(offsets.get(partition))
        self.moved.notify()
        return set()


def _names(topic: str, partitions: Iterable[int]) -> str:
    return ", ".join(f"{topic}[{p}]" for p in partitions)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A partition's work taken for one commit: its outbox (changelog records included) and
    the input offset to commit with it."""

    partition: int
    outbox: Outbox
    source_offset: int
