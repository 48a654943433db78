"""Stage a, the ceiling: a raw aiokafka consumer (getmany) and ``orjson.loads`` of each value.

Nothing else: no group, no commits, no framework. Fetch sizes as the product's consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition


async def consume_all(
    client_kwargs: dict,
    topic: str,
    max_fetch_bytes: int,
    time_limit_s: float,
    on_progress: Callable[[int, float], None],
) -> dict:
    consumer = AIOKafkaConsumer(
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=max_fetch_bytes,
        fetch_max_bytes=64 * 1024 * 1024,
        **client_kwargs,
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        total = sum(ends.values())
        remaining = {tp for tp in tps if ends[tp] > 0}
        count = 0
        first = last = None
        at_first = 0
        cpu_started = time.process_time()
        deadline = time.monotonic() + time_limit_s
        loads = orjson.loads
        while remaining and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500, max_records=10000)
            for tp, records in batches.items():
                for record in records:
                    loads(record.value)
                count += len(records)
                if records and records[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
            if batches:
                last = time.monotonic()
                if first is None:
                    first, at_first = last, count
                on_progress(count, last - first)
        seconds = (last - first) if first is not None and last is not None else 0.0
        return {
            "events": count,
            "events_at_start": at_first,
            "expected": total,
            "finished": not remaining,
            "seconds": seconds,
            "cpu_seconds": time.process_time() - cpu_started,
        }
    finally:
        await consumer.stop()


def run(bootstrap: str, topic: str, max_fetch_bytes: int, time_limit_s: float, on_progress) -> dict:  # noqa: ANN001
    return asyncio.run(consume_all(bootstrap, topic, max_fetch_bytes, time_limit_s, on_progress))
