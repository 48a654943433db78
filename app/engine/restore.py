"""Bring a partition's local RocksDB up to date from its changelog (committed data only).

The restore reaches the changelog's end only once every transaction on it has ended: read
``read_committed`` up to the high watermark, with the last stable offset equal to it. Opening
a partition does not fence its previous owner (KIP-447), so a transaction of that owner may
still be open on the changelog; stopping at the last stable offset below it would miss its
records if it commits. A transaction that never ends is aborted by its coordinator after the
transaction timeout, so the wait is bounded (``app.engine.transactions``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import TopicPartition

from app.engine.clients import committed_reader, stop_consumer
from app.engine.store import PartitionStore

log = logging.getLogger(__name__)

_CHUNK = 5000
# The broker answers a fetch at the end of the partition after this long: what a partition
# with nothing to restore costs.
_FETCH_WAIT_MS = 20
_WAIT_LOG_S = 5.0  # an open transaction held the restore this long: say so once


def at_stable_end(position: int, highwater: int | None, last_stable: int | None) -> bool:
    """Whether a ``read_committed`` reader at ``position`` has read the whole partition: a
    fetch has told its high watermark, no transaction is open on it (the last stable offset
    is the high watermark), and the reader is there."""
    return highwater is not None and last_stable == highwater and position >= highwater


async def restore_partition(
    store: PartitionStore, topic: str, partition: int, client_kwargs: dict[str, Any]
) -> int:
    """Apply changelog records after the store's checkpoint; return how many were applied.

    Reads with ``read_committed``, so records of aborted or still-open transactions are never
    applied: the store reaches exactly the state of the last committed round, once no
    transaction is open on the changelog partition (the module docstring).
    """
    tp = TopicPartition(topic, partition)
    consumer = committed_reader(
        client_kwargs, max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_wait_ms=_FETCH_WAIT_MS
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        checkpoint = store.checkpoint()
        start = 0 if checkpoint is None else checkpoint + 1
        consumer.seek(tp, start)
        started = time.monotonic()
        logged = False
        applied = 0
        while not at_stable_end(
            await consumer.position(tp), consumer.highwater(tp), consumer.last_stable_offset(tp)
        ):
            batches = await consumer.getmany(tp, timeout_ms=_FETCH_WAIT_MS, max_records=_CHUNK)
            records = batches.get(tp, ())
            if records:
                store.apply(((r.key, r.value) for r in records), records[-1].offset)
                applied += len(records)
            if not logged and time.monotonic() - started > _WAIT_LOG_S:
                logged = True
                log.info(
                    "restoring %s[%d]: waiting for a transaction open on it to end (last "
                    "stable offset %s, high watermark %s)", topic, partition,
                    consumer.last_stable_offset(tp), consumer.highwater(tp),
                )
        if applied:
            log.info(
                "restored %s[%d] offsets %d..%d: %d records in %.2fs",
                topic, partition, start, await consumer.position(tp) - 1, applied,
                time.monotonic() - started,
            )
        return applied
    finally:
        await stop_consumer(consumer)
