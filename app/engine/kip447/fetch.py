"""Committed offsets that no open transaction is about to change (OffsetFetch v7,
``require_stable``; KIP-447).

With KIP-447 a new owner of a partition no longer fences its previous owner's producer: that
owner's last transaction may still be open, its offset commit pending. A plain fetch then
answers the offset committed before it, and the new owner would read again what that
transaction is about to commit. With ``require_stable`` the coordinator answers
UNSTABLE_OFFSET_COMMIT for such a partition instead; ``fetch_committed`` asks again, after
``backoff_s``, until the transaction has ended (committed or aborted) or ``timeout_s`` has
passed (``UnstableOffsets``). Kafka Streams and the Java consumer do the same
(``isolation.level=read_committed``).

Only aiokafka's public client calls are used: ``coordinator_lookup`` and ``send``, so any
started client does (``AIOKafkaProducer.client``, for one).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable

from aiokafka.client import AIOKafkaClient, ConnectionGroup, CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.structs import TopicPartition

from app.engine.kip447.outcomes import Outcome, UnstableOffsets, error_name, fetch_outcome
from app.engine.kip447.protocol import StableOffsetFetch

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60.0  # the Java consumer's default.api.timeout.ms
DEFAULT_BACKOFF_S = 0.1  # its retry.backoff.ms


def by_topic(partitions: Iterable[TopicPartition]) -> list[tuple[str, list[int]]]:
    """``[(topic, [partition, ...]), ...]``, sorted, as the request takes them."""
    topics: dict[str, list[int]] = defaultdict(list)
    for tp in sorted(set(partitions)):
        topics[tp.topic].append(tp.partition)
    return list(topics.items())


def read_answer(
    response: object, asked: set[TopicPartition]
) -> tuple[dict[TopicPartition, int | None], set[TopicPartition], Outcome, int]:
    """Split an OffsetFetch v7 answer into the offsets it settles (None: nothing committed),
    the partitions still unstable, and the worst other outcome with its error code (DONE, 0
    when there is none). A partition of ``asked`` the answer leaves out is unstable too."""
    top = fetch_outcome(response.error_code)
    if top is not Outcome.DONE:
        return {}, set(asked), top, response.error_code
    settled: dict[TopicPartition, int | None] = {}
    unstable: set[TopicPartition] = set()
    worst, worst_code = Outcome.DONE, 0
    for topic, partitions, _tags in response.topics:
        for partition, offset, _epoch, _metadata, code, _ptags in partitions:
            tp = TopicPartition(topic, partition)
            if tp not in asked:
                continue
            outcome = fetch_outcome(code)
            if outcome is Outcome.DONE:
                settled[tp] = offset if offset >= 0 else None
            elif outcome is Outcome.UNSTABLE:
                unstable.add(tp)
            elif worst is Outcome.DONE or outcome is Outcome.FATAL:
                worst, worst_code = outcome, code
    unstable |= asked - settled.keys() - unstable
    return settled, unstable, worst, worst_code


async def fetch_committed(
    client: AIOKafkaClient,
    group_id: str,
    partitions: Iterable[TopicPartition],
    *,
    require_stable: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    backoff_s: float = DEFAULT_BACKOFF_S,
) -> dict[TopicPartition, int | None]:
    """The group's committed offset of each partition (None: nothing committed), asked of the
    group coordinator with OffsetFetch v7. See the module docstring.

    Raises ``UnstableOffsets`` when a transaction still holds an offset after ``timeout_s``,
    the last retriable error when the coordinator could not be reached by then, and at once
    for an error no retry can get past (authorization, an unknown topic), or
    ``UnsupportedByBroker`` for a broker without OffsetFetch v7.
    """
    if not group_id or not isinstance(group_id, str):
        raise ValueError(f"group_id must be a non-empty string, not {group_id!r}")
    pending = set(partitions)
    if not all(isinstance(tp, TopicPartition) for tp in pending):
        raise TypeError("partitions must be TopicPartition instances")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    offsets: dict[TopicPartition, int | None] = {}
    node_id: int | None = None
    while pending:
        try:
            if node_id is None:
                node_id = await client.coordinator_lookup(CoordinationType.GROUP, group_id)
            response = await client.send(
                node_id,
                StableOffsetFetch(group_id, by_topic(pending), require_stable),
                group=ConnectionGroup.COORDINATION,
            )
        except KafkaError as exc:
            if not exc.retriable or loop.time() >= deadline:
                raise
            log.debug("offset fetch for group %s: %r, retrying", group_id, exc)
            node_id = None
        else:
            settled, pending, outcome, code = read_answer(response, pending)
            offsets.update(settled)
            if outcome is Outcome.FATAL:
                raise for_code(code)(f"offset fetch for group {group_id}: {error_name(code)}")
            if outcome is Outcome.NEW_COORDINATOR:
                node_id = None
            if not pending:
                break
            if loop.time() >= deadline:
                if outcome in (Outcome.DONE, Outcome.UNSTABLE):
                    names = [f"{tp.topic}[{tp.partition}]" for tp in sorted(pending)]
                    raise UnstableOffsets(group_id, names, timeout_s)
                raise for_code(code)(f"offset fetch for group {group_id}: {error_name(code)}")
            log.debug(
                "offset fetch for group %s: %d partitions unstable or not answered (%s)",
                group_id, len(pending), error_name(code) if code else "UNSTABLE_OFFSET_COMMIT",
            )
        await asyncio.sleep(backoff_s)
    return offsets
