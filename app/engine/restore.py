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
from contextlib import aclosing
from typing import Any

from aiokafka import TopicPartition

from app.engine.committed import read_to_end
from app.engine.store import PartitionStore

log = logging.getLogger(__name__)

_CHUNK = 5000
# The broker answers a fetch at the end of the partition after this long: what a partition
# with nothing to restore costs.
_FETCH_WAIT_MS = 20


async def restore_partition(
    store: PartitionStore, topic: str, partition: int, client_kwargs: dict[str, Any]
) -> int:
    """Apply changelog records after the store's checkpoint; return how many were applied.

    Reads with ``read_committed``, so records of aborted or still-open transactions are never
    applied: the store reaches exactly the state of the last committed round, once no
    transaction is open on the changelog partition (the module docstring).
    """
    tp = TopicPartition(topic, partition)
    checkpoint = store.checkpoint()
    start = 0 if checkpoint is None else checkpoint + 1
    started = time.monotonic()
    applied = 0
    batches = read_to_end(
        client_kwargs, [tp], starts={tp: start}, stable=True, max_records=_CHUNK,
        fetch_max_wait_ms=_FETCH_WAIT_MS, max_partition_fetch_bytes=4 << 20,
    )
    async with aclosing(batches):
        async for records in batches:
            store.apply(((r.key, r.value) for r in records), records[-1].offset)
            applied += len(records)
    if applied:
        log.info(
            "restored %s[%d] offsets %d..%d: %d records in %.2fs",
            topic, partition, start, store.checkpoint(), applied, time.monotonic() - started,
        )
    return applied
