"""Runs one stage: fetches its open partitions' records (``app.engine.reader``), applies them
through its owned partitions, and commits the work of every changed partition in rounds, one
transaction each (``app.engine.partitions``): the next round starts as soon as the last one
has ended, at most once per commit interval.

A record that makes its processor raise is dead-lettered with reason ``processing_error``
and the partition goes on (``_failed``); with ``processing_errors="fail"``, and for any other
failure (reading, committing, a failure that is not the record's: ``app.engine.failures``),
the worker exits (see ``fatal``) and restarts from the committed offsets and state, so nothing
is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence

import faust
from aiokafka import ConsumerRecord

from app.metrics import Metrics
from app.engine.ordering import PartitionOrder, Verdict
from app.engine.reader import StageReader
from app.engine.partitions import OwnedPartitions, Sealed
from app.engine.failures import blames_record
from app.engine.faust_fixes import request_rejoin
from app.engine.kip447 import GroupMetadata, faust_group_metadata
from app.models.events import Rejection
from app.engine.transactions import OutputRefused

log = logging.getLogger(__name__)

# The least time from a round's end to the next round's start. The broker completes a
# transaction (writes its markers) after it has answered its commit; the next transaction
# of the same producer, begun before that, has its first requests answered "try again"
# (CONCURRENT_TRANSACTIONS, NOT_ENOUGH_REPLICAS for produce) and retried after 20 ms
# (``transactions.RETRY_BACKOFF_MS``). On one broker the markers took 1-3 ms: a round begun
# within 2 ms of the last one's end paid that retry in 58 % of rounds, one begun 2-5 ms after
# it in 2 % (docs/measurements.md).
ROUND_GAP_S = 0.005


class StageRunner:
    def __init__(
        self,
        app: faust.App,
        owned: OwnedPartitions,
        reader: StageReader,
        metrics: Metrics,
        batch_max_events: int,
        commit_interval_s: float,
        max_uncommitted: int = 4_000,
        check_gaps: bool = False,
        start_after: asyncio.Event | None = None,
        requires: StageRunner | None = None,
        processing_errors: str = "continue",
        group_metadata: Callable[[], GroupMetadata] | None = None,
        round_gap_s: float = ROUND_GAP_S,
    ) -> None:
        """``group_metadata``: the group member this worker is now, which each round's
        offsets are committed under (faust's consumer's, by default). ``round_gap_s``: the
        least time from a round's end to the next one's start (``ROUND_GAP_S``)."""
        self._app = app
        self._group_metadata = group_metadata or (lambda: faust_group_metadata(app))
        self._reader = reader
        # A stage whose partition p this one reads while it processes its own partition p
        # (the views read the properties of their partition): it is opened, restored, first.
        self._requires = requires
        # Set when the stage may process (the views wait for the profiles table's bootstrap).
        self._start_after = start_after
        # Seek back on any offset gap (for an input whose producers write no transactions,
        # a gap means a skipped record); otherwise only at a partition's first record.
        self._check_gaps = check_gaps
        self.owned = owned
        self._metrics = metrics
        metrics.rounds_fenced.labels(owned.name)  # 0 until a round is fenced
        self._batch_max_events = batch_max_events
        # Partitions with applied but uncommitted records. A round commits them all, in one
        # transaction; rounds start at most every ``commit_interval_s`` (Kafka Streams'
        # commit.interval.ms), and as soon as the round before has ended.
        self._commit_interval_s = commit_interval_s
        self._dirty: set[int] = set()
        # Records applied since the last seal. Past ``max_uncommitted`` the stage waits for the
        # commit in flight and commits at once: when commits are slower than processing, the
        # work waiting for them (pending writes, outputs) stays bounded instead of growing
        # with the backlog (Kafka Streams' buffered records per partition play this part).
        self._uncommitted = 0
        self._max_uncommitted = max_uncommitted
        self._last_commit = 0.0  # when the last round started
        self._round_gap_s = round_gap_s
        self._last_end = -round_gap_s  # when the last round ended
        # The round in flight, if any. Processing goes on while it runs (the stores read
        # over its sealed changes); the next round waits for it (one transaction at a time
        # per stage). Returns the partitions it found fenced.
        self._inflight: asyncio.Task[set[int]] | None = None
        self._kick: asyncio.Task[None] | None = None  # the next round's start: ``_round_ended``
        self._order: dict[int, PartitionOrder] = {}  # per open partition, see ordering.py
        # The consumer generation whose assignment this stage works on; None from a
        # revocation until the next assignment. Nothing is opened or applied outside it: the
        # partitions of an old assignment are their new owners' now.
        self._generation: int | None = None
        # Partitions of a fenced round in this generation. Their fetch position has moved
        # past the dropped work, so they wait for the rebalance that follows a fence, which
        # restarts them from the transactionally committed offset.
        self._lost: set[int] = set()
        # What a record that makes its processor raise costs: "continue", a dead letter;
        # "fail", the worker (Kafka Streams' LogAndContinue / LogAndFail handlers).
        if processing_errors not in ("continue", "fail"):
            raise ValueError(f"processing_errors must be continue or fail, not {processing_errors!r}")
        self._continue_on_error = processing_errors == "continue"
        # Per partition, offsets of records that made its processor raise: when the rewound
        # partition reaches one again it is dead-lettered, not processed (``_failed``).
        self._poison: dict[int, dict[int, str]] = {}  # partition -> offset -> detail

    def highwater(self, partition: int) -> int | None:
        """The end offset of the stage's input partition, as its reader last saw it."""
        return self._reader.highwater(partition)

    def assigned_partitions(self) -> set[int]:
        topic = self.owned.source_topic
        return {tp.partition for tp in self._app.consumer.assignment() if tp.topic == topic}

    async def run(self) -> None:
        """Fetch and apply until the worker stops (a task of the worker: ``app.agents.stages``)."""
        start_after = self._start_after
        if start_after is not None and not start_after.is_set():
            log.info("%s: waiting for the tables it reads to bootstrap", self.owned.name)
            await start_after.wait()
        self._start_after = None
        try:
            await self._reader.start()
            while True:
                await self._open_missing()
                records = await self._reader.fetch(self._batch_max_events)
                if records:
                    await self.process(records)
        except Exception:  # noqa: BLE001
            fatal(f"{self.owned.name}: reading {self.owned.source_topic} failed")
        finally:
            await self._reader.stop()

    async def process(self, records: Mapping[int, Sequence[ConsumerRecord]]) -> None:
        """Apply one fetch (partition -> records in offset order); commit when it is due."""
        try:
            await self._process(records)
        except Exception:  # noqa: BLE001
            fatal(f"{self.owned.name}: processing a batch failed")

    async def _process(self, records: Mapping[int, Sequence[ConsumerRecord]]) -> None:
        received = time.monotonic()
        owned = self.owned
        count = 0
        async with owned.lock:
            if self._app.consumer_generation_id != self._generation:
                # Between a revocation and our assignment: whatever stays open is read again.
                self._read_again(records)
                return
            assigned = self.assigned_partitions()
            stream_times = _stream_times(owned, owned.partitions)
            now_ms = int(time.time() * 1000)
            orphaned = set()
            for partition, batch in records.items():
                if partition not in assigned or partition in self._lost:
                    continue  # revoked or fenced meanwhile: the new owner processes it
                processor = owned.processor(partition)
                if processor is None:
                    continue  # closed meanwhile: read from its store's offset when it reopens
                if self._requires is not None and self._requires.owned.processor(partition) is None:
                    orphaned.add(partition)  # what it reads was fenced: so is it, see below
                    continue
                count += self._apply(partition, processor, batch, now_ms)
                self._dirty.add(partition)
            if orphaned:
                # The required stage's partition went with a fenced round (a round covers
                # all of a stage's changed partitions): this one waits for the same rebalance.
                self._lost |= orphaned
                await self._close(orphaned)
            if count:
                owned.moved.notify()
            await self._reap()
            self._uncommitted += count
            full = self._uncommitted >= self._max_uncommitted
            if full or self._round_wait(received) <= 0:
                if full:
                    await self._join()  # back pressure: the commit in flight first
                    # and the round gap after it, as for any round (``ROUND_GAP_S``)
                    # (a loop: a timer may fire a little early, uvloop counts whole ms)
                    while (gap := self._last_end + self._round_gap_s - time.monotonic()) > 0:
                        await asyncio.sleep(gap)
                sealed = await self._commit_dirty(now_ms)
                self._metrics.observe_event_time(
                    int(time.time() * 1000), stream_times, _stream_times(owned, sealed)
                )
        self._metrics.events_consumed.labels(owned.source_topic).inc(count)
        self._metrics.latency_receive.observe(time.monotonic() - received)

    def _apply(self, partition: int, processor, batch: Sequence[ConsumerRecord], now_ms: int) -> int:  # noqa: ANN001
        """Hand one partition's records to its processor as the order check admits them
        (``app.engine.ordering``); returns how many it was handed."""
        order = self._order[partition]
        admit = order.admit
        process = processor.process
        poison = self._poison.get(partition)
        applied = 0
        for record in batch:
            offset = record.offset
            verdict = admit(offset)
            if verdict is Verdict.APPLY:
                if poison and offset in poison:
                    if processor.first_time(offset):
                        rejection = Rejection("processing_error", poison[offset])
                        processor.dead_letter(offset, record.key, record.value, rejection)
                    applied += 1
                    continue
                try:
                    process(offset, record.key, record.value, now_ms)
                except Exception as exc:  # noqa: BLE001 - whatever the record made it raise
                    if not (self._continue_on_error and blames_record(exc)):
                        raise
                    self._failed(partition, record, exc)
                    break  # the rest is read again after the rewind
                applied += 1
            elif verdict is Verdict.SEEK:
                self._reader.seek(partition, order.expected)
                break  # the rest is read again after the seek
            elif verdict is Verdict.REREAD:
                self._metrics.events_reread.labels(self.owned.source_topic).inc()
        return applied

    def _failed(self, partition: int, record: ConsumerRecord, exc: Exception) -> None:
        """The processor raised on ``record``: undo what the partition did since its last
        seal (the record's partial changes with it), read it again from there, and when the
        re-read reaches ``record``, dead-letter it instead of processing it (KIP-1033's
        processing exception handler, with the rollback a transaction gives for free)."""
        owned = self.owned
        detail = f"{type(exc).__name__}: {exc}"
        fresh = owned.rewind(partition)
        resume = fresh.applied_offset + 1
        # Failed records at or below the rewind's offset are sealed as dead letters; those
        # above it are rolled back with this one, and meet the dead-letter path again.
        poison = {o: d for o, d in self._poison.get(partition, {}).items() if o >= resume}
        poison[record.offset] = detail
        self._poison[partition] = poison
        log.error(
            "%s[%d]@%d: processing failed (%s); its partition's work from offset %d on is rolled "
            "back and read again, the record goes to %s with reason processing_error",
            owned.source_topic, partition, record.offset, detail, resume, fresh.dead_letters.topic,
            exc_info=exc,
        )
        self._metrics.processing_errors.labels(owned.name, type(exc).__name__).inc()
        self._order[partition] = PartitionOrder.rewound(resume, record.offset, self._check_gaps)
        self._reader.seek(partition, resume)

    def _read_again(self, records: Mapping[int, Sequence[ConsumerRecord]]) -> None:
        """Records not applied, of partitions still open: fetch them again, never skip them."""
        for partition in records:
            order = self._order.get(partition)
            if order is not None:
                self._reader.seek(partition, order.expected)

    async def _open_missing(self) -> None:
        """Open what is assigned but not open: after an ``open_assigned`` that failed, say."""
        generation = self._generation
        if generation is not None and self.assigned_partitions() - self.owned.partitions - self._lost:
            await self.open_assigned(generation)

    async def _open(self, partition: int) -> None:
        """Open an assigned partition (restore its store) and read it from after its applied
        offset; the same partition of a required stage first."""
        if self._requires is not None and not await self._required_open(partition):
            # What it reads is another worker's now: like a fenced partition, wait for the
            # rebalance, which opens it from its committed offset where both are assigned.
            self._lost.add(partition)
            return
        processor = await self.owned.open(partition)
        self._opened(partition, processor.applied_offset)

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
                await self._open(partition)
            return True

    async def _close(self, partitions: set[int]) -> None:
        self._reader.remove(partitions)
        await self.owned.close(partitions)
        for partition in partitions:
            self._order.pop(partition, None)
            # Its next owner meets the failing record again and decides for itself.
            self._poison.pop(partition, None)

    def _opened(self, partition: int, applied_offset: int) -> None:
        self._order[partition] = PartitionOrder.opened(applied_offset, self._check_gaps)
        self._reader.add(partition, applied_offset + 1)

    async def commit_due(self) -> None:
        """Commit what batches and punctuators left uncommitted once the interval has passed
        (a quiet stream)."""
        if self._inflight is not None and self._inflight.done():
            async with self.owned.lock:
                await self._reap()
        if self._round_wait(time.monotonic()) > 0:
            return
        async with self.owned.lock:
            await self._commit_dirty(int(time.time() * 1000))

    async def commit_all(self) -> None:
        """Commit everything applied so far, and wait for it (before a shutdown)."""
        async with self.owned.lock:
            await self._commit_dirty(int(time.time() * 1000), wait=True)

    async def _commit_dirty(self, now_ms: int, wait: bool = False) -> set[int]:
        """Seal the dirty partitions' work, with what their due punctuators write, and commit
        it in a round in the background (under the lock), under the group member this worker
        is now.

        With a round still in flight, nothing new starts (the work stays dirty for the next
        round, which starts when that one ends: ``_round_ended``) unless ``wait``: then the
        round in flight and the new one are both awaited, and every punctuator runs first (a
        handover). Returns the partitions sealed.
        """
        if self._inflight is not None:
            if not wait and not self._inflight.done():
                return set()
            await self._join()
        owned = self.owned
        for partition in owned.partitions - self._lost:
            if owned.processor(partition).punctuate(now_ms, every=wait):
                self._dirty.add(partition)
        partitions = self._dirty & owned.partitions - self._lost
        self._dirty = set()
        self._uncommitted = 0
        if not partitions:
            return set()
        self._last_commit = time.monotonic()
        sealed = [work for p in sorted(partitions) if (work := owned.seal(p, now_ms))]
        for partition in partitions:
            processor = owned.processor(partition)
            if processor is not None:
                self._metrics.record_outcomes(owned.source_topic, processor.outcomes)
        if sealed:
            self._inflight = asyncio.ensure_future(self._commit(sealed, self._group_metadata()))
            self._inflight.add_done_callback(self._round_ended)
            if wait:
                await self._join()
        return {work.partition for work in sealed}

    async def _commit(self, sealed: list[Sealed], group: GroupMetadata) -> set[int]:
        owned = self.owned
        started = time.monotonic()
        try:
            fenced = await owned.commit(sealed, group)
        except OutputRefused as exc:
            self._metrics.produce_refused.labels(exc.topic, exc.error).inc()
            fatal(f"{owned.name}: committing failed: {exc}")
        except Exception:  # noqa: BLE001
            fatal(f"{owned.name}: committing failed")
        # At once, so that no more records of a fenced partition are applied; it is closed
        # when the task is joined, under the lock.
        if fenced:
            self._lost |= fenced
            self._metrics.rounds_fenced.labels(owned.name).inc()
            self._rejoin_if_still_assigned(fenced, group)
        self._metrics.commit_seconds.labels(owned.name).observe(time.monotonic() - started)
        return fenced

    def _round_wait(self, now: float) -> float:
        """Seconds until the next round may start: the commit interval since the last one
        started, and ``round_gap_s`` since it ended."""
        return max(
            self._last_commit + self._commit_interval_s - now,
            self._last_end + self._round_gap_s - now,
        )

    def _round_ended(self, _: asyncio.Future) -> None:
        """Commit continuously: the next round starts as soon as this one has ended (and the
        round gap has passed), or once the commit interval since this one started has passed
        (``commit_due``), so that under a light load a record waits for one round, not two."""
        now = self._last_end = time.monotonic()
        delay = max(self._round_wait(now), 0.0)
        asyncio.get_running_loop().call_later(delay, self._start_next_round)

    def _start_next_round(self) -> None:
        if not self._dirty:
            return
        remaining = self._round_wait(time.monotonic())
        if remaining > 0:
            # A timer may fire a little early (uvloop counts whole milliseconds); then
            # ``commit_due`` would find the interval not passed and no round would follow.
            asyncio.get_running_loop().call_later(remaining + 0.001, self._start_next_round)
            return
        if self._kick is None or self._kick.done():
            self._kick = asyncio.ensure_future(self._next())

    async def _next(self) -> None:
        try:
            await self.commit_due()
        except Exception:  # noqa: BLE001 - the commit timer tries again
            log.exception("%s: starting the next commit round failed", self.owned.name)

    def _rejoin_if_still_assigned(self, fenced: set[int], group: GroupMetadata) -> None:
        """A round fenced while the group still assigns its partitions here, in the
        generation the round was committed under, may not have been taken over: its
        transaction was aborted by the coordinator (one kept open past the transaction
        timeout, by brokers down longer than that). No rebalance would come to restart them
        from their committed offsets, so ask for one, as Kafka Streams does on a fence. When
        the group has moved on (it refused the round), the rebalance is under way already and
        this changes nothing."""
        assigned = self.assigned_partitions()
        kept = sorted(p for p in fenced if p in assigned)
        if kept and self._app.consumer_generation_id == group.generation_id:
            log.warning(
                "%s: %s fenced while the group still assigns them here; rejoining the group "
                "to restart them from their committed offsets",
                self.owned.name,
                ", ".join(f"{self.owned.source_topic}[{p}]" for p in kept),
            )
            request_rejoin(self._app)

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
            await self._close(fenced)

    def on_assigned(self, generation: int) -> None:
        """A new assignment (faust's ``on_partitions_assigned``), of consumer ``generation``."""
        self._generation = generation

    async def open_assigned(self, generation: int) -> None:
        """Open newly assigned partitions ahead of their first event (readiness, latency)."""
        async with self.owned.lock:
            if generation != self._generation or generation != self._app.consumer_generation_id:
                return  # revoked meanwhile: that assignment is over
            for partition in sorted(self.assigned_partitions() - self.owned.partitions - self._lost):
                await self._open(partition)

    async def on_revoked(self, partitions: set[int]) -> None:
        async with self.owned.lock:
            # Still ours in this generation, which the group keeps until every member has
            # rejoined: hand over everything applied, as Kafka Streams commits on revocation
            # (the next owner's opening waits for this round to end).
            await self._commit_dirty(int(time.time() * 1000), wait=True)
            await self._close(partitions)
            self._generation = None
            self._lost.clear()  # the next assignment starts from the committed offsets

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
