"""Keeps this worker's ``ProfilesTable`` up to date: bootstrap, then tail ``user.profiles``.

As a Kafka Streams GlobalKTable: a consumer of its own (no group, ``read_committed``, every
partition assigned) resumes each partition at the table's checkpoint and reads contiguously.
At its first start it reads the end offsets; ``bootstrapped`` is set once every partition has
been read up to them, so everything published before the worker started is in the table
before a view is joined through it. Nothing can be skipped: offsets are read in order and
only a write batch that holds a batch's changes moves the checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from app.engine.clients import committed_reader, stop_consumer, wait_for_partitions
from app.engine.retry import constant, retry
from app.metrics import Metrics
from app.tables.profiles import REPLAYED, ProfilesTable, fold

log = logging.getLogger(__name__)

PROGRESS_SECONDS = 5.0
RECONNECT_S = 1.0
# Most records applied in one write batch: a compressed fetch can hold many times its bytes
# in profiles (docs/measurements.md).
BATCH_RECORDS = 5000


class ProfilesReader:
    def __init__(
        self,
        table: ProfilesTable,
        topic: str,
        client_kwargs: dict[str, Any],
        max_bytes: int,
        metrics: Metrics,
        fetch_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.table = table
        self.topic = topic
        self._client_kwargs = client_kwargs
        self._max_bytes = max_bytes
        self._metrics = metrics
        self._fetch_bytes = fetch_bytes
        self.bootstrapped = asyncio.Event()
        # partition -> offsets not read yet (as of the last fetch), for the profiles_lag gauge
        self.lag: dict[int, int] = {}
        self._targets: dict[int, int] | None = None  # partition -> end offset at start-up
        self._started_at = 0.0
        self._next_progress = 0.0

    async def run(self) -> None:
        """Read until cancelled; broker trouble reconnects and resumes at the checkpoint."""
        self.table.open()
        await retry(self._read, f"{self.topic}: reading profiles", backoff=constant(RECONNECT_S))

    async def _read(self) -> None:
        while True:
            try:
                await self._run_once()
            except OffsetOutOfRangeError as exc:
                # The checkpoint is past the end or before the start of the topic: it was
                # recreated or truncated. Its current content is the truth: read it anew.
                log.warning(
                    "%s: checkpoint out of range (%s): the topic was recreated or truncated; "
                    "reading it again from the beginning", self.topic, exc,
                )
                self.table.clear()

    async def _run_once(self) -> None:
        # "none": an out-of-range checkpoint raises instead of silently jumping elsewhere.
        consumer = committed_reader(
            self._client_kwargs,
            auto_offset_reset="none",
            max_partition_fetch_bytes=self._fetch_bytes,
        )
        await consumer.start()
        try:
            tps = await wait_for_partitions(consumer, self.topic)
            consumer.assign(tps)
            resume = self.table.checkpoints()
            for tp in tps:
                if tp.partition in resume:
                    consumer.seek(tp, resume[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            if self._targets is None:
                ends = await consumer.end_offsets(tps)
                self._targets = {tp.partition: end for tp, end in ends.items()}
                self._started_at = time.monotonic()
                self._next_progress = self._started_at + PROGRESS_SECONDS
                log.info(
                    "%s: bootstrapping the profiles table from %s to %s",
                    self.topic, resume or "the beginning", self._targets,
                )
            await self._tail(consumer, tps, resume)
        finally:
            await stop_consumer(consumer)

    async def _tail(
        self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], resume: dict[int, int]
    ) -> None:
        records_total = self._metrics.profiles_records
        while True:
            positions = {tp.partition: await consumer.position(tp) for tp in tps}
            for tp in tps:
                end = consumer.last_stable_offset(tp) or consumer.highwater(tp)
                if end is not None and end >= 0:
                    self.lag[tp.partition] = max(end - positions[tp.partition], 0)
            if not self.bootstrapped.is_set():
                self._check_bootstrap(positions)
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH_RECORDS)
            records = [record for batch in batches.values() for record in batch]
            if records:
                changes = fold(records, self._max_bytes, resume)
                self.table.apply(changes)
                resume.update(changes.next_offsets)
                for outcome, n in changes.outcomes.items():
                    if outcome != REPLAYED:
                        records_total.labels(outcome).inc(n)

    def _check_bootstrap(self, positions: dict[int, int]) -> None:
        targets = self._targets or {}
        behind = {p: end for p, end in targets.items() if positions.get(p, 0) < end}
        now = time.monotonic()
        if not behind:
            self.bootstrapped.set()
            log.info(
                "%s: profiles table bootstrapped in %.1fs (up to %s)",
                self.topic, now - self._started_at, targets,
            )
        elif now >= self._next_progress:
            self._next_progress = now + PROGRESS_SECONDS
            read = sum(min(positions.get(p, 0), end) for p, end in targets.items())
            total = sum(targets.values())
            log.info(
                "%s: bootstrapping the profiles table: %d of %d offsets read (%.0f%%), %d behind",
                self.topic, read, total, 100 * read / total, total - read,
            )
