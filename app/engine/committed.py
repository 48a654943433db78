"""``read_to_end``: every committed record of some partitions, from a start up to their end.

The one way the commands, the replay, ``records_between`` and the changelog restore read a
topic whole: a consumer of its own (no group, ``read_committed``), each partition's batches
handed over as fetched. The end is fixed when the read begins (records written later are not
waited for), or, for the restore (``stable``), it is where no transaction is open any more: a
previous owner may still commit on a changelog (``app.engine.restore``). The read-model tails
read differently on purpose: a tail never ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition

from app.engine.clients import committed_reader, partitions_of, stop_consumer

log = logging.getLogger(__name__)

FETCH_WAIT_MS = 500
WAIT_LOG_S = 5.0  # a stable read held this long by an open transaction says so, once


class TopicNotFound(LookupError):
    """The topic to read does not exist (no partitions known to the brokers)."""


def at_stable_end(position: int, highwater: int | None, last_stable: int | None) -> bool:
    """Whether a ``read_committed`` reader at ``position`` has read the whole partition: a
    fetch has told its high watermark, no transaction is open on it (the last stable offset
    is the high watermark), and the reader is there."""
    return highwater is not None and last_stable == highwater and position >= highwater


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
    stable: bool = False,
    max_records: int | None = None,
    **options: Any,
) -> AsyncIterator[list[ConsumerRecord]]:
    """Batches (one partition's records each, in offset order) of every committed record of
    ``what``, a topic (each of its partitions; TopicNotFound when it has none) or partitions.

    ``starts``: the first offset per partition (default and below 0: its beginning).
    ``ends``: the end, exclusive, per partition (default: its end offset when the read begins).
    ``stable``: instead, read each partition until ``at_stable_end``, through the transactions
    open on it (logged once when that takes over ``WAIT_LOG_S``).
    ``options`` go to the consumer (e.g. ``max_partition_fetch_bytes``; ``fetch_max_wait_ms``:
    how long a fetch at a partition's end waits, what an empty partition costs). Stop early
    with ``contextlib.aclosing`` so the consumer is stopped at once.
    """
    options = {"auto_offset_reset": "earliest", "fetch_max_wait_ms": FETCH_WAIT_MS, **options}
    consumer = committed_reader(client_kwargs, **options)
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
        end = {} if stable else dict(ends) if ends is not None else await consumer.end_offsets(tps)
        from_start = [tp for tp in tps if (starts or {}).get(tp, -1) < 0]
        if from_start:
            await consumer.seek_to_beginning(*from_start)
        for tp in tps:
            if tp not in from_start:
                consumer.seek(tp, starts[tp])  # type: ignore[index]

        async def unread(tp: TopicPartition) -> bool:
            position = await consumer.position(tp)
            if stable:
                hw, lso = consumer.highwater(tp), consumer.last_stable_offset(tp)
                return not at_stable_end(position, hw, lso)
            return position < end[tp]

        started, waited = time.monotonic(), False
        behind = [tp for tp in tps if await unread(tp)]
        while behind:
            batches = await consumer.getmany(
                *behind, timeout_ms=options["fetch_max_wait_ms"], max_records=max_records
            )
            for tp, records in batches.items():
                inside = records if stable else below_end(records, end[tp])
                if inside:
                    yield inside
            behind = [tp for tp in behind if await unread(tp)]
            if stable and behind and not waited and time.monotonic() - started > WAIT_LOG_S:
                waited = True
                for tp in behind:
                    log.info(
                        "reading %s[%d]: waiting for a transaction open on it to end (last "
                        "stable offset %s, high watermark %s)", tp.topic, tp.partition,
                        consumer.last_stable_offset(tp), consumer.highwater(tp),
                    )
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
