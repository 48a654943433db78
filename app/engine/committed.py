"""``read_to_end``: every committed record of some partitions, from a start up to their end.

The one way the commands, the replay and ``records_between`` read a topic whole: a consumer
of its own (no group, ``read_committed``), the end fixed when the read begins (records
written later are not waited for), each partition's batches handed over as fetched. The
changelog restore and the read-model tails read differently on purpose: the restore's end is
the stable end of a partition a previous owner may still write (``app.engine.restore``), a
tail never ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from app.engine.clients import committed_reader, partitions_of, stop_consumer

FETCH_TIMEOUT_MS = 500


class TopicNotFound(LookupError):
    """The topic to read does not exist (no partitions known to the brokers)."""


def below_end(records: list[ConsumerRecord], end: int) -> list[ConsumerRecord]:
    """The records of one fetch that lie before ``end`` (a fetch may run past it)."""
    if not records or records[-1].offset < end:
        return records
    return [r for r in records if r.offset < end]


async def read_to_end(
    client_kwargs: dict[str, Any],
    what: str | Iterable[TopicPartition],
    *,
    starts: Mapping[TopicPartition, int] | None = None,
    ends: Mapping[TopicPartition, int] | None = None,
    max_records: int | None = None,
    **options: Any,
) -> AsyncIterator[list[ConsumerRecord]]:
    """Batches (one partition's records each, in offset order) of every committed record of
    ``what``, a topic (each of its partitions; TopicNotFound when it has none) or partitions.

    ``starts``: the first offset per partition (default and below 0: its beginning).
    ``ends``: the end, exclusive, per partition (default: its end offset when the read begins).
    ``options`` go to the consumer (e.g. ``max_partition_fetch_bytes``). Stop early with
    ``contextlib.aclosing`` so the consumer is stopped at once.
    """
    consumer = committed_reader(client_kwargs, **{"auto_offset_reset": "earliest", **options})
    await consumer.start()
    try:
        if isinstance(what, str):
            partitions = await partitions_of(consumer, what)
            if not partitions:
                raise TopicNotFound(f"topic {what} does not exist")
            tps = [TopicPartition(what, p) for p in sorted(partitions)]
        else:
            tps = list(what)
        if not tps:
            return
        consumer.assign(tps)
        end = dict(ends) if ends is not None else await consumer.end_offsets(tps)
        from_start = [tp for tp in tps if (starts or {}).get(tp, -1) < 0]
        if from_start:
            await consumer.seek_to_beginning(*from_start)
        for tp in tps:
            if tp not in from_start:
                consumer.seek(tp, starts[tp])  # type: ignore[index]
        behind = [tp for tp in tps if await consumer.position(tp) < end[tp]]
        while behind:
            batches = await consumer.getmany(
                *behind, timeout_ms=FETCH_TIMEOUT_MS, max_records=max_records
            )
            for tp, records in batches.items():
                inside = below_end(records, end[tp])
                if inside:
                    yield inside
            behind = [tp for tp in behind if await consumer.position(tp) < end[tp]]
    finally:
        await stop_consumer(consumer)


async def records_between(
    client_kwargs: dict[str, Any],
    starts: Mapping[TopicPartition, int],
    ends: Mapping[TopicPartition, int],
) -> int:
    """Records (not transaction markers) from ``starts`` up to ``ends``, read_committed.

    A consumer group's lag in records: on a transactionally written topic a caught-up group
    sits short of the end offset by the commit markers, which take offsets but are never
    delivered, so ``end - committed`` alone never reaches 0 there.
    """
    batches = read_to_end(client_kwargs, list(ends), starts=starts, ends=ends)
    return sum([len(batch) async for batch in batches])
