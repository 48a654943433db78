"""Runs batches of a faust stream through the owned partitions of one stage.

The batch's events are acked by faust only after this returns, i.e. after the commit
transaction; a failure inside is fatal on purpose (see ``fatal``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence

import faust
from faust.types import EventT

from app.metrics import Metrics
from app.engine.ordering import PartitionOrder, Verdict
from app.engine.partitions import OwnedPartitions, Sealed
from app.engine.transactions import OutputRefused

log = logging.getLogger(__name__)


class StageRunner:
    def __init__(
        self,
        app: faust.App,
        owned: OwnedPartitions,
        metrics: Metrics,
        batch_max_events: int,
        publish_interval_s: float,
        commit_interval_s: float,
        check_gaps: bool = False,
        start_after: asyncio.Event | None = None,
        requires: StageRunner | None = None,
    ) -> None:
        self._app = app
        # A stage whose partition p this one reads while it processes its own partition p
        # (the views read the properties of their partition): it is opened, restored, first.
        self._requires = requires
        # Set when the stage may process (the views wait for the profiles table's bootstrap).
        # Its topic is consumed without acks, so a batch waiting here holds up no rebalance.
        self._start_after = start_after
        # Seek back on any offset gap (for an input whose producers write no transactions,
        # a gap means a record faust skipped); otherwise only at a partition's first record.
        self._check_gaps = check_gaps
        self.owned = owned
        self._metrics = metrics
        self._batch_max_events = batch_max_events
        self._publish_interval_s = publish_interval_s
        self._last_publish = 0.0
        # Partitions with applied but uncommitted records. They are committed at most every
        # ``commit_interval_s`` (Kafka Streams' commit.interval.ms): under a live load a
        # transaction per partition and small batch would cost more than the batch itself.
        self._commit_interval_s = commit_interval_s
        self._dirty: set[int] = set()
        self._last_commit = 0.0
        # The commit in flight, if any. Processing goes on while it runs (the stores read
        # over its sealed changes); the next commit waits for it (one transaction at a time
        # per partition). Returns the partitions it found fenced.
        self._inflight: asyncio.Task[set[int]] | None = None
        self._order: dict[int, PartitionOrder] = {}  # per open partition, see ordering.py
        # The consumer generation whose assignment this stage works on; None from a
        # revocation until the next assignment. Nothing is opened or applied outside it: a
        # late open of the old assignment would fence the partitions' new owners.
        self._generation: int | None = None
        # Partitions fenced by another owner in this generation. Their fetch position has
        # moved past the dropped batch, so they wait for the rebalance that follows a fence,
        # which restarts them from the transactionally committed offset.
        self._lost: set[int] = set()

    def assigned_partitions(self) -> set[int]:
        topic = self.owned.source_topic
        return {tp.partition for tp in self._app.consumer.assignment() if tp.topic == topic}

    async def process_batch(self, events: Sequence[EventT]) -> None:
        start_after = self._start_after
        if start_after is not None:
            if not start_after.is_set():
                log.info("%s: waiting for the tables it reads to bootstrap", self.owned.name)
                await start_after.wait()
            self._start_after = None
        try:
            await self._process_batch(events)
        except Exception:  # noqa: BLE001
            fatal(f"{self.owned.name}: processing a batch failed")

    async def _process_batch(self, events: Sequence[EventT]) -> None:
        received = time.monotonic()
        owned = self.owned
        async with owned.lock:
            generation = self._app.consumer_generation_id
            if generation != self._generation:
                return  # between a revocation and our assignment: re-read after the seek
            assigned = self.assigned_partitions()
            stream_times = _stream_times(owned, owned.partitions)
            now_ms = int(time.time() * 1000)
            touched: set[int] = set()
            for event in events:
                message = event.message
                partition = message.partition
                if (
                    message.generation_id != generation
                    or partition not in assigned
                    or partition in self._lost
                ):
                    continue  # revoked or fenced meanwhile: the new owner processes it
                processor = owned.processor(partition)
                required = self._requires
                if (
                    required is not None
                    and required.owned.processor(partition) is None
                    and not await self._required_open(partition)
                ):
                    # What it reads is another worker's now: like a fenced partition, wait
                    # for the rebalance, which restarts it from its committed offset.
                    self._lost.add(partition)
                    continue
                if processor is None:
                    processor = await owned.open(partition)
                    self._opened(partition, processor.applied_offset)
                verdict = self._order[partition].admit(message.offset)
                if verdict is not Verdict.APPLY:  # out of order: see app.engine.ordering
                    await self._not_applied(message, verdict)
                    continue
                processor.process(message.offset, message.key, message.value, now_ms)
                touched.add(partition)
            self._dirty |= touched
            await self._reap()
            if received - self._last_commit >= self._commit_interval_s:
                publish = (
                    len(events) < self._batch_max_events
                    or received - self._last_publish >= self._publish_interval_s
                )
                sealed = await self._commit_dirty(now_ms, publish)
                self._metrics.observe_event_time(
                    int(time.time() * 1000), stream_times, _stream_times(owned, sealed)
                )
        self._metrics.events_consumed.labels(owned.source_topic).inc(len(events))
        self._metrics.latency_receive.observe(time.monotonic() - received)

    async def _not_applied(self, message, verdict: Verdict) -> None:  # noqa: ANN001
        """Act on a record the order check held back (the common case costs no coroutine)."""
        if verdict is Verdict.SEEK:
            order = self._order[message.partition]
            await self._app.consumer.seek(message.tp, order.expected)
        elif verdict is Verdict.REREAD:
            self._metrics.events_reread.labels(self.owned.source_topic).inc()

    async def _required_open(self, partition: int) -> bool:
        """Whether the required stage has ``partition`` open, opening it if need be; False
        when that stage lost it (revoked or fenced), so this one must not process it now."""
        required = self._requires
        assert required is not None
        opened = await required.ensure_open(partition, self._generation)
        if not opened and self._app.consumer_generation_id == self._generation and (
            partition not in required.assigned_partitions()
        ):
            fatal(
                f"{self.owned.name}: {self.owned.source_topic}[{partition}] is assigned but "
                f"{required.owned.source_topic}[{partition}] is not: the topics must have the "
                "same partition count"
            )
        return opened

    async def ensure_open(self, partition: int, generation: int | None) -> bool:
        """Open ``partition`` now if it is assigned in ``generation`` (for a stage that reads
        it); False when it is not this worker's to open."""
        async with self.owned.lock:
            if (
                generation is None
                or generation != self._generation
                or generation != self._app.consumer_generation_id
                or partition not in self.assigned_partitions()
                or partition in self._lost
            ):
                return False
            if self.owned.processor(partition) is None:
                processor = await self.owned.open(partition)
                self._opened(partition, processor.applied_offset)
            return True

    def _opened(self, partition: int, applied_offset: int) -> None:
        self._order[partition] = PartitionOrder.opened(applied_offset, self._check_gaps)

    async def commit_due(self) -> None:
        """Commit what batches left uncommitted once the interval has passed (a quiet stream)."""
        if self._inflight is not None and self._inflight.done():
            async with self.owned.lock:
                await self._reap()
        if not self._dirty or time.monotonic() - self._last_commit < self._commit_interval_s:
            return
        async with self.owned.lock:
            publish = time.monotonic() - self._last_publish >= self._publish_interval_s
            await self._commit_dirty(int(time.time() * 1000), publish)

    async def publish_pending(self) -> None:
        """Publish shares left unpublished by throttling, when the stream is quiet."""
        owned = self.owned
        async with owned.lock:
            pending = {
                p for p in owned.partitions if (proc := owned.processor(p)) and proc.has_unpublished
            }
            if pending or self._dirty:
                await self._commit_dirty(int(time.time() * 1000), True, also=pending)

    async def commit_all(self) -> None:
        """Commit everything applied so far, and wait for it (before a shutdown)."""
        async with self.owned.lock:
            await self._commit_dirty(int(time.time() * 1000), True, wait=True)

    async def _commit_dirty(
        self, now_ms: int, publish: bool, also: set[int] = frozenset(), wait: bool = False
    ) -> set[int]:
        """Seal the dirty partitions' work and commit it in the background (under the lock).

        With a commit still in flight, nothing new starts (the work stays dirty for the next
        try) unless ``wait``: then the commit in flight and the new one are both awaited.
        Returns the partitions sealed.
        """
        if self._inflight is not None:
            if not wait and not self._inflight.done():
                return set()
            await self._join()
        owned = self.owned
        partitions = (self._dirty | also) & owned.partitions - self._lost
        self._dirty = set()
        self._last_commit = time.monotonic()
        sealed = [work for p in sorted(partitions) if (work := owned.seal(p, now_ms, publish))]
        if publish:
            self._last_publish = time.monotonic()
        for partition in partitions:
            processor = owned.processor(partition)
            if processor is not None:
                self._metrics.record_outcomes(owned.source_topic, processor.outcomes)
        if sealed:
            self._inflight = asyncio.ensure_future(self._commit(sealed))
            if wait:
                await self._join()
        return {work.partition for work in sealed}

    async def _commit(self, sealed: list[Sealed]) -> set[int]:
        owned = self.owned
        generation = self._app.consumer_generation_id

        def still_owned(partition: int) -> bool:
            return (
                self._app.consumer_generation_id == generation
                and partition in self.assigned_partitions()
            )

        started = time.monotonic()
        try:
            fenced = await owned.commit(sealed, still_owned)
        except OutputRefused as exc:
            self._metrics.produce_refused.labels(exc.topic, exc.error).inc()
            fatal(f"{owned.name}: committing failed: {exc}")
        except Exception:  # noqa: BLE001
            fatal(f"{owned.name}: committing failed")
        # At once, so that no more records of a fenced partition are applied; it is closed
        # when the task is joined, under the lock.
        self._lost |= fenced
        self._metrics.commit_seconds.labels(owned.name).observe(time.monotonic() - started)
        return fenced

    async def _reap(self) -> None:
        """Join the commit in flight if it has finished (under the lock)."""
        if self._inflight is not None and self._inflight.done():
            await self._join()

    async def _join(self) -> None:
        """Wait for the commit in flight and close what it found fenced (under the lock)."""
        task, self._inflight = self._inflight, None
        if task is None:
            return
        fenced = await task
        if fenced:
            await self.owned.close(fenced)

    def on_assigned(self, generation: int) -> None:
        """A new assignment (faust's ``on_partitions_assigned``), of consumer ``generation``."""
        self._generation = generation

    async def open_assigned(self, generation: int) -> None:
        """Open newly assigned partitions ahead of their first event (readiness, latency)."""
        async with self.owned.lock:
            if generation != self._generation or generation != self._app.consumer_generation_id:
                return  # revoked meanwhile: that assignment is over
            for partition in sorted(self.assigned_partitions() - self.owned.partitions - self._lost):
                processor = await self.owned.open(partition)
                self._opened(partition, processor.applied_offset)

    async def on_revoked(self, partitions: set[int]) -> None:
        async with self.owned.lock:
            # Still ours until the next owner opens them (which fences us): hand over
            # everything applied, as Kafka Streams commits on revocation.
            await self._commit_dirty(int(time.time() * 1000), True, wait=True)
            await self.owned.close(partitions)
            self._generation = None
            self._lost.clear()  # the next assignment starts from the committed offsets
            for partition in partitions:
                self._order.pop(partition, None)

    @property
    def ready(self) -> bool:
        return self.assigned_partitions() <= self.owned.partitions


def _stream_times(owned: OwnedPartitions, partitions: set[int]) -> dict[int, int]:
    """Stream time (newest accepted event time) per open partition, for stages that keep one."""
    out = {}
    for partition in partitions:
        stream_time = getattr(owned.processor(partition), "stream_time", None)
        if stream_time is not None:
            out[partition] = stream_time
    return out


def fatal(what: str) -> None:
    """Log and exit at once, before faust can ack and commit the failed batch (faust #527)."""
    log.critical("%s; exiting so that the batch is replayed, not skipped", what, exc_info=True)
    logging.shutdown()
    os._exit(70)
