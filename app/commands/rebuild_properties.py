"""``rebuild-properties``: rebuild every property aggregate from ``property.events``, from
the beginning, and compare it with the stored state (``app.properties.rebuild``).

Reads committed records only: the properties stage's changelog (the stored state, with the
applied offset of each partition) and the event log up to that offset. Works whether or not
workers run. Prints one line per partition and each difference; exit code 0 when there is
none, 1 when there are, 2 when it cannot compare (a broker error, a missing topic).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from pathlib import Path

import faust
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from app.commands._cli import fail
from app.engine.clients import committed_reader, partitions_of, stop_consumer
from app.engine.committed import read_to_end
from app.engine.store import PartitionStore, rocksdb_options
from app.properties.rebuild import applied_offset, compare, rebuild_partition
from app.settings import Settings
from app.stages.properties import PropertiesConfig

DIFFERENT = 1
_SCRATCH_CACHE = 4 * 1024 * 1024


async def _read(client_kwargs: dict, tp: TopicPartition, end: int | None = None) -> list:
    """The committed records of ``tp`` from its beginning, up to ``end`` (exclusive) or to
    the end it had when asked."""
    ends = None if end is None else {tp: end}
    batches = read_to_end(
        client_kwargs, [tp], ends=ends, max_records=5000, max_partition_fetch_bytes=4 << 20
    )
    return [record async for records in batches for record in records]


async def rebuild_all(settings: Settings, say) -> tuple[int, int, int, list[str]]:  # noqa: ANN001
    """(partitions, properties, events, differences) over every partition."""
    config = PropertiesConfig.from_settings(settings)
    client_kwargs = settings.kafka_client_kwargs()
    consumer = committed_reader(client_kwargs)
    await consumer.start()
    totals = [0, 0, 0]
    differences: list[str] = []
    try:
        for topic in (settings.properties_changelog_topic, settings.property_events_topic):
            if not await partitions_of(consumer, topic):
                raise FileNotFoundError(f"topic {topic} does not exist (start a worker first)")
        now_ms = int(time.time() * 1000)
        with tempfile.TemporaryDirectory(prefix="rebuild-properties-") as scratch:
            for partition in range(settings.topic_partitions):
                stored: dict[bytes, bytes] = {}
                changelog = TopicPartition(settings.properties_changelog_topic, partition)
                for record in await _read(client_kwargs, changelog):
                    if record.value is None:
                        stored.pop(record.key, None)
                    else:
                        stored[record.key] = record.value
                upto = applied_offset(stored)
                source = TopicPartition(settings.property_events_topic, partition)
                records = [(r.offset, r.key, r.value) for r in await _read(client_kwargs, source, upto + 1)]
                store = PartitionStore(
                    Path(scratch) / f"{partition:03d}", rocksdb_options(_SCRATCH_CACHE, _SCRATCH_CACHE)
                )
                try:
                    rebuilt = rebuild_partition(partition, records, store, config, now_ms)
                finally:
                    store.close()
                check = compare(partition, stored, rebuilt)
                say(
                    f"{settings.property_events_topic}[{partition}] through offset {upto}: "
                    f"{check.properties} properties, {check.events} events, "
                    f"{len(check.differences)} differences"
                    + (
                        f" ({check.snapshots_missing} snapshots not backfilled yet)"
                        if check.snapshots_missing else ""
                    )
                )
                totals[0] += 1
                totals[1] += check.properties
                totals[2] += check.events
                differences += [f"[{partition}] {d}" for d in check.differences]
    finally:
        await stop_consumer(consumer)
    return totals[0], totals[1], totals[2], differences


def register(app: faust.App, settings: Settings) -> None:
    @app.command()
    async def rebuild_properties(self: faust.cli.AppCommand) -> None:
        """Rebuild every property aggregate from property.events and compare it with the
        stored state; exit code 0 when nothing differs."""

        def say(line: str) -> None:
            print(line, flush=True)

        # The refused events are the stage's to report; here they are part of the replay.
        logging.getLogger("app.stages.properties").setLevel(logging.ERROR)

        try:
            partitions, properties, events, differences = await rebuild_all(settings, say)
        except FileNotFoundError as exc:
            fail(str(exc))
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        for line in differences:
            print(line)
        print(
            f"rebuilt {properties} properties from {events} events over {partitions} "
            f"partitions: {len(differences)} differences"
        )
        sys.stdout.flush()
        if differences:
            raise SystemExit(DIFFERENT)
