"""Standby replicas: copies of other workers' partition stores, kept warm on this worker.

faust's assignor names the partitions this worker holds as standby (``STANDBY_REPLICAS``,
docs/internals.md). For each, the keeper opens the stage's store in the same place the stage
would, and applies the stage's changelog to it as it is committed (``read_committed``, a
consumer of its own outside the group), checkpointing the last applied offset in the same
batch as the records, exactly as a restore does (``app.engine.restore``). When the partition
becomes active here, the keeper closes its store first; the stage's normal opening then
restores only what the copy had not applied yet: the tail.

The copy holds committed data only, so it can lag without harm: a lagging copy makes a longer
tail. Besides its later owner's restore, only reads that accept a stale answer
(``?consistency=standby``, ``app.web.standby_reads``) look at it, through ``copy``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiokafka import TopicPartition

from app.engine.clients import committed_reader, stop_consumer
from app.engine.store import PartitionStore

log = logging.getLogger(__name__)

_CHUNK = 5000
_FETCH_WAIT_MS = 200  # a copy may lag this much behind a quiet changelog
_RETRY_S = 1.0  # after the brokers failed the keeper's consumer
_WAIT_ACTIVE_S = 0.2  # how often the copies look whether the active partitions are open


@dataclass(frozen=True)
class StandbyStage:
    """What the keeper needs of a stage: its changelog and where its partitions' stores live."""

    name: str
    changelog: str
    store_path: Callable[[int], Path]


class Consumer(Protocol):
    """The part of ``AIOKafkaConsumer`` the keeper uses (a fake one in the unit tests)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def assign(self, partitions: list[TopicPartition]) -> None: ...
    def seek(self, partition: TopicPartition, offset: int) -> None: ...
    async def position(self, partition: TopicPartition) -> int: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    def last_stable_offset(self, partition: TopicPartition) -> int | None: ...
    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Any]]: ...


Key = tuple[str, int]  # (stage name, partition)


def wanted_standbys(
    stages: Iterable[tuple[str, str]], standbys: Iterable[tuple[str, int]], active: set[Key]
) -> set[Key]:
    """The (stage, partition) copies to keep: every standby partition ``(topic, partition)``
    of a stage's source topic (``stages``: stage name, source topic), less those active here."""
    by_topic: dict[str, list[str]] = {}
    for name, source in stages:
        by_topic.setdefault(source, []).append(name)
    return {
        (name, partition)
        for topic, partition in standbys
        for name in by_topic.get(topic, ())
        if (name, partition) not in active
    }


def copy_lag(position: int, highwater: int | None, last_stable: int | None) -> int | None:
    """Committed changelog records a copy at ``position`` has not applied yet (records of a
    transaction still open count once it commits); None before a fetch has told the end."""
    end = last_stable if last_stable is not None else highwater
    if end is None:
        return None
    return max(end - position, 0)


class StandbyKeeper:
    """Keeps this worker's standby copies up to date (``update`` says which)."""

    def __init__(
        self,
        stages: Iterable[StandbyStage],
        rocksdb_options: Any,
        client_kwargs: dict[str, Any],
        consumer_factory: Callable[[], Consumer] | None = None,
        active_opened: Callable[[], bool] = lambda: True,
    ) -> None:
        """``active_opened``: whether the partitions this worker is active for are all open.
        The copies wait for it after each assignment: a takeover's restores come first, and
        copies made from scratch would compete with them for the CPU and the event loop."""
        self._active_opened = active_opened
        self._stages = {stage.name: stage for stage in stages}
        self._options = rocksdb_options
        self._consumer_factory = consumer_factory or (
            lambda: committed_reader(
                client_kwargs,
                max_partition_fetch_bytes=4 * 1024 * 1024,
                fetch_max_wait_ms=_FETCH_WAIT_MS,
            )
        )
        self._wanted: set[Key] = set()
        self._stores: dict[Key, PartitionStore] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.lag: dict[Key, int] = {}  # per copy, once its consumer has fetched
        self.applied: Counter[Key] = Counter()  # records applied per copy since it opened here

    @property
    def held(self) -> set[Key]:
        """The copies this worker is asked to keep."""
        return set(self._wanted)

    def stores(self) -> list[PartitionStore]:
        return list(self._stores.values())

    def copy(self, key: Key) -> tuple[PartitionStore, int | None] | None:
        """The copy of ``key`` open here and its lag (None before its first fetch), or None.
        Read it without awaiting in between: ``update`` may close it at any await."""
        store = self._stores.get(key)
        return None if store is None else (store, self.lag.get(key))

    async def update(self, wanted: set[Key]) -> None:
        """Keep exactly ``wanted``. Returns once every copy no longer wanted is closed (so a
        partition that became active here can be opened by its stage); the new copies open
        and catch up in the background."""
        async with self._lock:
            await self._halt()
            self._wanted = {key for key in wanted if key[0] in self._stages}
            for key in sorted(set(self._stores) - self._wanted):
                self._close(key)
            if self._wanted:
                self._task = asyncio.ensure_future(self._keep())

    async def stop(self) -> None:
        await self.update(set())

    async def _halt(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    def _close(self, key: Key) -> None:
        store = self._stores.pop(key)
        self.lag.pop(key, None)
        self.applied.pop(key, None)
        offset = store_offset(store)
        store.close()
        log.info("standby %s[%d]@%s closed", *self._topic_partition(key), offset)

    def _topic_partition(self, key: Key) -> tuple[str, int]:
        return self._stages[key[0]].changelog, key[1]

    def _open(self, key: Key) -> PartitionStore:
        store = self._stores.get(key)
        if store is None:
            store = PartitionStore(self._stages[key[0]].store_path(key[1]), self._options)
            self._stores[key] = store
            log.info("standby %s[%d]@%s opened", *self._topic_partition(key), store_offset(store))
        return store

    async def _keep(self) -> None:
        """Apply the wanted copies' changelogs until cancelled; broker trouble restarts the
        consumer from the stores' checkpoints."""
        while not self._active_opened():
            await asyncio.sleep(_WAIT_ACTIVE_S)
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a copy must never stop the worker
                log.warning("standby copies: reading the changelogs failed; retrying", exc_info=True)
                await asyncio.sleep(_RETRY_S)

    async def _follow(self) -> None:
        keys = sorted(self._wanted)
        for key in keys:
            self._open(key)
        tps = {TopicPartition(*self._topic_partition(key)): key for key in keys}
        consumer = self._consumer_factory()
        await consumer.start()
        try:
            consumer.assign(list(tps))
            for tp, key in tps.items():
                checkpoint = self._stores[key].checkpoint()
                consumer.seek(tp, 0 if checkpoint is None else checkpoint + 1)
            while True:
                batches = await consumer.getmany(
                    *tps, timeout_ms=_FETCH_WAIT_MS, max_records=_CHUNK
                )
                self._apply(batches, tps)
                for tp, key in tps.items():
                    lag = copy_lag(
                        await consumer.position(tp),
                        consumer.highwater(tp),
                        consumer.last_stable_offset(tp),
                    )
                    if lag is not None:
                        self.lag[key] = lag
        finally:
            await stop_consumer(consumer)  # type: ignore[arg-type]

    def _apply(
        self, batches: Mapping[TopicPartition, list[Any]], tps: Mapping[TopicPartition, Key]
    ) -> None:
        for tp, records in batches.items():
            if not records:
                continue
            key = tps[tp]
            self._stores[key].apply(((r.key, r.value) for r in records), records[-1].offset)
            self.applied[key] += len(records)


def store_offset(store: PartitionStore) -> str:
    checkpoint = store.checkpoint()
    return "none" if checkpoint is None else str(checkpoint)
