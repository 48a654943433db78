"""Compressed batches for the broker tests: produce with any codec, with aiokafka or with Kafka's
own console producer (the jars under ``.local/kafka/libs``), and see which codecs the batches
of a topic were stored with, from the batches' own headers."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from aiokafka import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from tests.support.oracle import Produced
from tests.support.topics import produce

CODECS = ("gzip", "snappy", "lz4", "zstd")
# The codec ids of a v2 record batch's attributes (the low three bits).
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
REPO = Path(__file__).resolve().parents[2]
KAFKA_LIBS = Path(os.environ.get("KAFKA_LIBS_DIR")
                  or Path(os.environ.get("KAFKA_HOME_DIR") or REPO / ".local" / "kafka") / "libs")
SEPARATOR = "\t"


async def produce_compressed(bootstrap: str, topic: str, records: Iterable[tuple],
                             codec: str) -> list[Produced]:
    """``tests.support.topics.produce`` with every batch compressed with ``codec``."""
    return await produce({"bootstrap_servers": bootstrap, "compression_type": codec}, topic,
                         records)


async def produce_rotating(bootstrap: str, topic: str, records: list[tuple],
                           chunks: int = 8) -> list[Produced]:
    """Send ``records`` in order in ``chunks`` runs, each compressed with the next codec of
    CODECS (each run is acknowledged before the next starts, so every partition keeps the
    order); returns them with partition and offset, as ``produce`` does."""
    size = max(1, -(-len(records) // chunks))
    produced: list[Produced] = []
    for i, start in enumerate(range(0, len(records), size)):
        produced += await produce_compressed(bootstrap, topic, records[start:start + size],
                                             CODECS[i % len(CODECS)])
    return produced


async def console_produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]],
                          codec: str) -> None:
    """Send keyed records with ``org.apache.kafka.tools.ConsoleProducer --compression-codec``,
    one line each (key TAB value), acks=all; it exits 0 even when a send failed, so its
    output is checked for errors too."""
    jars = sorted(KAFKA_LIBS.glob("kafka-tools-*.jar"))
    assert jars, f"no Kafka jars in {KAFKA_LIBS}: run tools/kafka/kafka.sh libs"
    lines = []
    for key, value in records:
        text_key, text_value = key.decode(), value.decode()
        assert SEPARATOR not in text_key and "\n" not in text_key + text_value, (key, value)
        lines.append(f"{text_key}{SEPARATOR}{text_value}\n")
    command = [
        "java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx256m",
        "-cp", f"{KAFKA_LIBS}/*", "org.apache.kafka.tools.ConsoleProducer",
        "--bootstrap-server", bootstrap, "--topic", topic, "--compression-codec", codec,
        "--reader-property", "parse.key=true",
        "--reader-property", f"key.separator={SEPARATOR}",
        "--producer-property", "acks=all",
        "--producer-property", "max.block.ms=30000",
    ]
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate("".join(lines).encode()), 180)
    output = (out + err).decode(errors="replace")
    assert proc.returncode == 0 and "ERROR" not in output, output[-3000:]


async def batch_codecs(bootstrap: str, topic: str) -> Counter[str]:
    """Records of ``topic`` per codec of the batch that holds them, read from each batch's
    attributes in raw Fetch answers (a consumer hides them)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.force_metadata_update()
        partitions = client.cluster.partitions_for_topic(topic)
        assert partitions, f"topic {topic} does not exist"
        counts: Counter[str] = Counter()
        for partition in sorted(partitions):
            leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
            offset = 0
            while True:
                request = FetchRequest(0, 1, 16 * 1024 * 1024, 0,
                                       [(topic, [(partition, offset, 16 * 1024 * 1024)])])
                response = await client.send(leader, request)
                [(_, [(_, error, high, *rest)])] = response.topics
                assert error == 0, f"fetch {topic}[{partition}]@{offset}: error {error}"
                records = MemoryRecords(rest[-1])
                while (batch := records.next_batch()) is not None:
                    if not batch.is_control_batch:
                        counts[CODEC_NAMES[batch.compression_type]] += sum(1 for _ in batch)
                    offset = batch.next_offset
                if offset >= high:
                    break
        return counts
    finally:
        await client.close()
