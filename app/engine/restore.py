"""Bring a partition's local RocksDB up to date from its changelog (committed data only)."""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import TopicPartition

from app.engine.clients import committed_reader, stop_consumer
from app.engine.store import PartitionStore

log = logging.getLogger(__name__)

_CHUNK = 5000


async def restore_partition(
    store: PartitionStore, topic: str, partition: int, client_kwargs: dict[str, Any]
) -> int:
    """Apply changelog records after the store's checkpoint; return how many were applied.

    Reads with ``read_committed``, so records of aborted or still-open transactions are never
    applied: the store reaches exactly the state of the last committed flush.
    """
    tp = TopicPartition(topic, partition)
    consumer = committed_reader(client_kwargs, max_partition_fetch_bytes=4 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        checkpoint = store.checkpoint()
        start = 0 if checkpoint is None else checkpoint + 1
        if start >= end:
            return 0
        consumer.seek(tp, start)
        started = time.monotonic()
        applied = 0
        last_offset = start - 1
        pending: list[tuple[bytes, bytes | None]] = []
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=_CHUNK)
            for record in batches.get(tp, ()):
                if record.offset >= end:
                    break
                pending.append((record.key, record.value))
                last_offset = record.offset
            if pending:
                store.apply(pending, last_offset)
                applied += len(pending)
                pending = []
        log.info(
            "restored %s[%d] offsets %d..%d: %d records in %.2fs",
            topic,
            partition,
            start,
            end - 1,
            applied,
            time.monotonic() - started,
        )
        return applied
    finally:
        await stop_consumer(consumer)
