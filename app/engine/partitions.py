"""The partitions of one source topic that this worker owns, each with its own state.

Opening a partition fences its previous owner (transactional id per partition), then brings
its RocksDB up to date from the changelog. Committing seals the partition's pending state,
outputs, dead letters and input offset, publishes them in one transaction, then writes RocksDB.
A crash anywhere leaves changelog, outputs and group offset at the last committed batch,
together; input at or below the stored ``applied`` offset is skipped should it be seen
again. That is what makes every count exact after any crash or rebalance.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiokafka import TopicPartition
from rocksdict import Options

from app.engine.restore import restore_partition
from app.engine.retry import retry
from app.engine.stall import CommitWatch
from app.engine.store import PartitionStore
from app.models.dead_letter import fit_dead_letter
from app.models.events import Rejection
from app.engine.transactions import (
    MAX_BATCH_BYTES,
    Failure,
    Outbox,
    PartitionFenced,
    TransactionalWriter,
    classify,
)

log = logging.getLogger(__name__)


class Processor(Protocol):
    """Domain logic of one partition: reads and writes its store, fills its outbox.

    ``applied_offset`` is the last input offset it has taken into account (stored in its
    state); ``process`` skips anything at or below it. ``outcomes`` tallies what became of
    the records (the runner folds it into the metrics and clears it).
    """

    partition: int
    store: PartitionStore
    outbox: Outbox
    applied_offset: int
    outcomes: Counter[str]

    def process(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None: ...

    def first_time(self, offset: int) -> bool:
        """Take ``offset`` as applied; False when it was applied before."""
        ...

    def before_commit(self, now_ms: int, publish: bool) -> bool:
        """Stage bookkeeping and shares for commit; True when there is anything to commit."""
        ...

    @property
    def has_unpublished(self) -> bool: ...


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
        dead_letter_topic: str,
        max_request_size: int = 2 * MAX_BATCH_BYTES,
        watch: CommitWatch | None = None,
    ) -> None:
        """``dead_letter_topic``: where a record that made the processor fail goes
        (``dead_letter``). ``max_request_size``: the largest record a partition's writer may
        send (see ``TransactionalWriter``). ``watch`` sees every opening and commit while it
        waits on the brokers (``app.engine.stall``)."""
        self.name = name
        self.source_topic = source_topic
        self.changelog_topic = changelog_topic
        self._app_id = app_id
        self._data_dir = data_dir
        self._options = rocksdb_options
        self._client_kwargs = client_kwargs
        self._factory = factory
        self.dead_letter_topic = dead_letter_topic
        self._max_request_size = max_request_size
        self._watch = watch or CommitWatch(float("inf"))
        self._group_id = app_id
        self._open: dict[int, tuple[Processor, TransactionalWriter]] = {}
        self.lock = asyncio.Lock()

    # -- ownership ----------------------------------------------------------------------
    @property
    def partitions(self) -> set[int]:
        return set(self._open)

    def processor(self, partition: int) -> Processor | None:
        entry = self._open.get(partition)
        return entry[0] if entry else None

    async def open(self, partition: int) -> Processor:
        """The partition's processor, fencing the old owner and restoring state first.

        Broker trouble (a restart, a timeout) is retried until it passes: a worker rides out
        a broker restart instead of exiting. A refusal for good (missing authorization) is
        raised at once.
        """
        entry = self._open.get(partition)
        if entry is not None:
            return entry[0]
        what = f"{self.name}: opening {self.source_topic}[{partition}]"

        async def noted(exc: BaseException) -> None:
            self._watch.failed(what, exc)

        token = self._watch.begin(what)
        try:
            processor, writer = await retry(
                lambda: self._open_once(partition),
                what,
                refused=lambda exc: classify(exc) is Failure.REFUSED,
                before_retry=noted,
            )
        finally:
            self._watch.end(token)
        self._open[partition] = (processor, writer)
        log.info(
            "%s: partition %d open, resuming after offset %d",
            self.name, partition, processor.applied_offset,
        )
        return processor

    async def _open_once(self, partition: int) -> tuple[Processor, TransactionalWriter]:
        writer = TransactionalWriter(
            f"{self._app_id}-{self.name}-{partition}", self._client_kwargs, self._max_request_size
        )
        await writer.start()  # fences any zombie still writing this partition
        store = PartitionStore(self._data_dir / self.name / f"{partition:03d}", self._options)
        try:
            await restore_partition(store, self.changelog_topic, partition, self._client_kwargs)
        except BaseException:
            store.close()
            await writer.stop()
            raise
        return self._factory(partition, store, Outbox()), writer

    async def close(self, partitions: Iterable[int]) -> None:
        for partition in list(partitions):
            entry = self._open.pop(partition, None)
            if entry is None:
                continue
            processor, writer = entry
            processor.store.close()
            await writer.stop()
            log.info("%s: partition %d closed", self.name, partition)

    # -- a record that failed ---------------------------------------------------------------
    def rewind(self, partition: int) -> Processor:
        """Undo the partition's work since its last seal: its pending writes, outputs and the
        processor's own memory. The processor is made anew over the store as the last seal
        left it (sealed work, a commit in flight, stays); the caller reads the partition
        again from after the new processor's ``applied_offset``."""
        processor, writer = self._open[partition]
        processor.store.rollback()
        fresh = self._factory(partition, processor.store, Outbox())
        self._open[partition] = (fresh, writer)
        return fresh

    def dead_letter(
        self,
        processor: Processor,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        rejection: Rejection,
    ) -> None:
        """Send the record at ``offset`` to the dead-letter topic instead of processing it, in
        the partition's next transaction with the applied offset that moves past it."""
        if not processor.first_time(offset):
            return
        partition = processor.partition
        headers = rejection.dlq_headers(self.source_topic, partition, offset)
        key, value, headers = fit_dead_letter(key, value, headers, self._max_request_size)
        processor.outbox.add(self.dead_letter_topic, partition, key, value, headers)
        processor.outcomes[f"rejected:{rejection.reason}"] += 1

    # -- commit -------------------------------------------------------------------------
    def seal(self, partition: int, now_ms: int, publish: bool) -> Sealed | None:
        """Take the partition's pending work for a commit; None if there is nothing to commit.

        Processing may go on meanwhile: its writes start a new pending set, read over the
        sealed one until that is committed (``PartitionStore.seal``).
        """
        entry = self._open.get(partition)
        if entry is None:
            return None
        processor, _ = entry
        if not processor.before_commit(now_ms, publish):
            return None
        store, outbox = processor.store, processor.outbox
        outbox.extend(self.changelog_topic, partition, store.pending.items())
        processor.outbox = Outbox()
        store.seal()
        return Sealed(partition, outbox, processor.applied_offset + 1)

    async def commit(
        self,
        sealed: list[Sealed],
        still_owned: Callable[[int], bool] = lambda _: True,
    ) -> set[int]:
        """Commit sealed work, concurrently, one transaction per partition, then write it to
        RocksDB. Returns the partitions found fenced by a newer owner: all their uncommitted
        work (sealed and pending) is dropped; the caller closes them.
        """
        fenced = await asyncio.gather(*(self._commit_one(work, still_owned) for work in sealed))
        return {work.partition for work, lost in zip(sealed, fenced, strict=True) if lost}

    async def _commit_one(self, work: Sealed, still_owned: Callable[[int], bool]) -> bool:
        partition = work.partition
        entry = self._open.get(partition)
        if entry is None:
            return False
        processor, writer = entry
        source = {TopicPartition(self.source_topic, partition): work.source_offset}
        what = f"{self.name}: commit of {self.source_topic}[{partition}]"
        token = self._watch.begin(what)
        try:
            offset = await writer.commit(
                work.outbox,
                self.changelog_topic,
                source,
                self._group_id,
                still_owned=lambda: still_owned(partition),
                on_error=lambda exc: self._watch.failed(what, exc),
            )
        except PartitionFenced:
            log.warning(
                "%s: %s[%d] fenced (a newer owner, or its transaction aborted by the coordinator); "
                "dropping its uncommitted work", self.name, self.source_topic, partition,
            )
            processor.store.discard_pending()
            processor.outbox.clear()
            return True
        finally:
            self._watch.end(token)
        processor.store.apply_sealed(offset)
        return False


@dataclass(frozen=True, slots=True)
class Sealed:
    """A partition's work taken for one commit: its outbox (changelog records included) and
    the input offset to commit with it."""

    partition: int
    outbox: Outbox
    source_offset: int
