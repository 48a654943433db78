"""``TopicTail``: every committed record of a topic, from its start (or its last N records)
and on, handed to a read model that every worker keeps in memory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import ConsumerRecord

from app.engine.clients import committed_reader, stop_consumer, wait_for_partitions
from app.engine.retry import constant, retry

log = logging.getLogger(__name__)

RECONNECT_S = 1.0


class TopicTail:
    """Reads every partition of ``topic`` (committed records only) and hands them to ``apply``.

    A record ``apply`` cannot take (it raises) is logged, counted in ``skipped`` and passed
    over: the tail runs in every worker and restarts from the topic's start, so one record
    that stopped it would stop every worker, on every restart.
    """

    def __init__(
        self,
        topic: str,
        client_kwargs: dict[str, Any],
        apply: Callable[[bytes | None, bytes | None], None],
        start_back: int | None = None,
        on_skipped: Callable[[], None] | None = None,
    ) -> None:
        self.topic = topic
        self._client_kwargs = client_kwargs
        self._apply = apply
        self._start_back = start_back
        self._on_skipped = on_skipped
        self.skipped = 0
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Read until cancelled; broker trouble reconnects and reads from the start again."""
        await retry(self._run_once, f"tail of {self.topic}", backoff=constant(RECONNECT_S))

    async def _run_once(self) -> None:
        consumer = committed_reader(self._client_kwargs)
        await consumer.start()
        try:
            tps = await wait_for_partitions(consumer, self.topic)
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            starts = await consumer.beginning_offsets(tps)
            for tp in tps:
                back = ends[tp] - self._start_back if self._start_back else starts[tp]
                consumer.seek(tp, max(back, starts[tp]))
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        self.take(record)
                if not self.caught_up.is_set():
                    positions = [await consumer.position(tp) for tp in tps]
                    if all(pos >= ends[tp] for pos, tp in zip(positions, tps, strict=True)):
                        self.caught_up.set()
        finally:
            await stop_consumer(consumer)

    def take(self, record: ConsumerRecord) -> bool:
        """Apply one record; False (logged, counted) when ``apply`` could not take it."""
        try:
            self._apply(record.key, record.value)
        except Exception as exc:  # noqa: BLE001 - whatever the record, the tail goes on
            self.skipped += 1
            if self._on_skipped is not None:
                self._on_skipped()
            log.warning(
                "skipped %s[%d]@%d: %r", record.topic, record.partition, record.offset, exc
            )
            return False
        return True
