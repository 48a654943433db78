"""What KIP-447 costs a transaction: one record and the input offset per transaction, committed
with aiokafka's own ``send_offsets_to_transaction`` (TxnOffsetCommit v0) and with
``app.engine.kip447`` (v3 with the group's generation), alternately on one producer; and a
committed-offset fetch with aiokafka (OffsetFetch v3) against ``fetch_committed``
(v7, require_stable). Against the broker of KAFKA_BOOTSTRAP_SERVERS:

    .venv/bin/python -m bench.micro_kip447 [transactions per path, default 200]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.engine.clients import stop_consumer
from app.engine.kip447 import consumer_group_metadata, fetch_committed, send_offsets_to_transaction
from app.settings import Settings


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    return f"{name}: p50 {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms (n={len(ms)})"


async def main(rounds: int) -> None:
    client = Settings().kafka_client_kwargs()  # KAFKA_BOOTSTRAP_SERVERS and security
    run = uuid.uuid4().hex[:8]
    source, sink, group = f"kip447-bench-in-{run}", f"kip447-bench-out-{run}", f"kip447-bench-{run}"
    admin = AIOKafkaAdminClient(**client)
    await admin.start()
    await admin.create_topics([NewTopic(source, 1, 1), NewTopic(sink, 1, 1)])
    member = AIOKafkaConsumer(source, group_id=group, enable_auto_commit=False, **client)
    producer = AIOKafkaProducer(transactional_id=f"bench-{run}", acks="all", retry_backoff_ms=20,
                                **client)
    await member.start()
    await producer.start()
    tp = TopicPartition(source, 0)
    try:
        while not member.assignment():
            await asyncio.sleep(0.1)
        metadata = consumer_group_metadata(member)
        times: dict[str, list[float]] = {"v0": [], "v3": []}
        for i in range(rounds * 2):
            path = "v3" if i % 2 else "v0"
            started = time.perf_counter()
            await producer.begin_transaction()
            await producer.send(sink, b"x", partition=0)
            if path == "v0":
                await producer.send_offsets_to_transaction({tp: i + 1}, group)
            else:
                await send_offsets_to_transaction(producer, {tp: i + 1}, metadata)
            await producer.commit_transaction()
            times[path].append(time.perf_counter() - started)
        print(summary("transaction, TxnOffsetCommit v0 (aiokafka)", times["v0"]))
        print(summary("transaction, TxnOffsetCommit v3 (kip447)", times["v3"]))

        fetches: dict[str, list[float]] = {"v3": [], "v7": []}
        for _ in range(rounds):
            started = time.perf_counter()
            await member.committed(tp)
            fetches["v3"].append(time.perf_counter() - started)
            started = time.perf_counter()
            await fetch_committed(producer.client, group, [tp])
            fetches["v7"].append(time.perf_counter() - started)
        print(summary("committed offset, OffsetFetch v3 (aiokafka)", fetches["v3"]))
        print(summary("committed offset, OffsetFetch v7 require_stable (kip447)", fetches["v7"]))
    finally:
        await producer.stop()
        await stop_consumer(member)
        await admin.delete_topics([source, sink])
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
