"""Taking over a partition whose previous owner died with a transaction open.

A partition opens once no open transaction holds its committed offset (``stable_offset``:
OffsetFetch with ``require_stable``, KIP-447). When its previous owner was SIGKILLed in the
middle of a round, that round's transaction stays open until the transaction coordinator
aborts it: after the transaction timeout (10 s), but the coordinator only looks for timed-out
transactions every ``transaction.abort.timed.out.transaction.cleanup.interval.ms`` (10 s by
default), so the partition waited up to 20 s after the dead worker's last round began; after
the session timeout had already passed, that was up to 8 s more (docs/measurements.md).

Here, once the offset has stayed unstable for ``CHECK_EVERY_S``, the new owner looks for the
transaction that holds the partition (ListTransactions, then DescribeTransactions: KIP-664)
and, once it has outlived its own timeout, ends it at once with InitProducerId on its
transactional id: what a restart of that worker (``app.engine.identity``), the coordinator's
own clean-up, or Kafka's ``Admin.fenceProducers`` (KIP-618) do. The coordinator bumps the
producer's epoch and writes the abort markers; the offset is then stable, and the restore
reads the changelog up to them.

Why exactness never depends on it: a fenced transaction is aborted as a whole (changelog,
outputs, dead letters, input offsets), and its owner writes RocksDB only after a commit
succeeded (``OwnedPartitions.commit``). A fenced owner that is still alive (a zombie, paused
past its session timeout: SIGSTOP) gets ProducerFenced at its next request, which is the
``Fenced`` outcome it already handles for the coordinator's own timeout abort: the round is
dropped, its partitions closed, and it rejoins the group if they are still assigned to it, to
read them again from the committed offsets. So the worst a fence can cost is one round of
work and a rebalance, never a count.

Why it costs a live worker nothing in practice, which transactions are fenced:

- only transactional ids of the same app and stage (``<APP_ID>-<stage>-<worker id>``,
  ``identity.stage_transactional_ids``), never this worker's own;
- only a transaction in state Ongoing that includes this partition of the stage's changelog
  (every round writes the changelog of each partition it commits), found only after the
  partition was assigned here in this generation and its offset was answered unstable for
  ``CHECK_EVERY_S`` (several answers): so not a previous owner finishing its last round;
- only once it has been open for longer than its own transaction timeout, by the
  coordinator's clock (its start time) against this worker's: the coordinator would abort it
  at its next clean-up anyway, in the same way (epoch bumped, the producer fenced). A clock
  ahead of the broker's fences a little early, a clock behind it waits as before; only the
  timing depends on clocks, never the outcome.

A round lasts milliseconds, so a live owner is never caught by these rules unless it has hung
for the whole transaction timeout, when the coordinator aborts its round anyway. One race is
left: between DescribeTransactions and InitProducerId (milliseconds), a restart of the dead
worker with its data dir could have fenced the transaction itself and started a new producer
under the same id; this fence then costs the restarted worker its first round, as above.

When anything here fails (a broker without KIP-664, missing Describe on transactional ids,
a coordinator moving), the opening waits for the coordinator's abort as before.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.client import AIOKafkaClient, ConnectionGroup, CoordinationType
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.transaction import InitProducerIdRequest
from aiokafka.structs import TopicPartition

from app.engine.kip447 import UnstableOffsets, fetch_committed
from app.engine.kip447.fetch import DEFAULT_TIMEOUT_S
from app.engine.kip447.outcomes import error_name
from app.engine.kip447.protocol import DescribeTransactions, ListTransactions

log = logging.getLogger(__name__)

ONGOING = "Ongoing"  # Kafka's TransactionState name of an open transaction
# How long an offset stays unstable before its holders are looked for: a previous owner that
# is alive ends its round within milliseconds, and most openings never get here.
CHECK_EVERY_S = 0.5
FENCE_BACKOFF_S = 0.05  # between InitProducerId tries while the abort is written
FENCE_TIMEOUT_S = 10.0  # give up fencing (and wait as before) after this long

_RETRY = frozenset({14, 51})  # COORDINATOR_LOAD_IN_PROGRESS, CONCURRENT_TRANSACTIONS
_NEW_COORDINATOR = frozenset({7, 15, 16})


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    """One transaction as DescribeTransactions tells it."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    started_ms: int
    timeout_ms: int
    partitions: frozenset[TopicPartition]

    def expired(self, now_ms: int) -> bool:
        """Open longer than its timeout: the coordinator would abort it at its next check."""
        return self.started_ms >= 0 and now_ms - self.started_ms > self.timeout_ms


def candidates(rows: Iterable[tuple], stage_ids: re.Pattern[str], own_id: str) -> list[str]:
    """The transactional ids of ListTransactions rows (id, producer id, state, tags) that
    are another worker's of this stage, with a transaction open: sorted, once each."""
    return sorted({
        txn_id for txn_id, _producer, state, *_ in rows
        if state == ONGOING and txn_id != own_id and stage_ids.fullmatch(txn_id)
    })


def open_transactions(rows: Iterable[tuple]) -> list[OpenTransaction]:
    """The open transactions among DescribeTransactions rows; an id the coordinator answered
    with an error (not found, not its coordinator) or in another state is left out."""
    found = []
    for code, txn_id, state, timeout_ms, started_ms, producer_id, epoch, topics, *_ in rows:
        if code != 0 or state != ONGOING:
            continue
        partitions = frozenset(
            TopicPartition(topic, partition) for topic, parts, *_ in topics for partition in parts
        )
        found.append(
            OpenTransaction(txn_id, producer_id, epoch, started_ms, timeout_ms, partitions)
        )
    return found


def to_fence(
    transactions: Iterable[OpenTransaction], changelog: TopicPartition, now_ms: int
) -> list[OpenTransaction]:
    """Those of ``transactions`` that hold ``changelog`` and have outlived their timeout."""
    return [t for t in transactions if changelog in t.partitions and t.expired(now_ms)]


async def stable_offset(
    client_kwargs: dict[str, Any],
    group_id: str,
    tp: TopicPartition,
    *,
    changelog: TopicPartition,
    stage_ids: re.Pattern[str],
    own_id: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    on_fenced: Callable[[], None] | None = None,
) -> list[str]:
    """Return once no open transaction holds the group's offset of ``tp``, fencing a dead
    owner's expired transaction that holds ``changelog`` (see the module docstring). Returns
    the transactional ids fenced; ``on_fenced`` is called for each.

    Raises ``UnstableOffsets`` after ``timeout_s``, and what ``fetch_committed`` raises.
    """
    client = AIOKafkaClient(**client_kwargs)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    fenced: list[str] = []
    looking = True  # until a look-up is refused for good: then wait as before
    try:
        await client.bootstrap()
        while True:
            try:
                left = max(0.0, deadline - loop.time())
                await fetch_committed(client, group_id, [tp], timeout_s=min(CHECK_EVERY_S, left))
                return fenced
            except UnstableOffsets:
                if loop.time() >= deadline:
                    name = f"{tp.topic}[{tp.partition}]"
                    raise UnstableOffsets(group_id, [name], timeout_s) from None
            except KafkaError as exc:
                if not exc.retriable or loop.time() >= deadline:
                    raise
                continue
            if not looking:
                continue
            try:
                for txn in await fence_expired(client, changelog, stage_ids, own_id):
                    fenced.append(txn.transactional_id)
                    if on_fenced is not None:
                        on_fenced()
            except (KafkaError, OSError) as exc:
                looking = isinstance(exc, OSError) or exc.retriable
                log.warning(
                    "%s[%d]: could not look for the open transaction holding its offset (%r); "
                    "waiting for the transaction coordinator to abort it%s",
                    tp.topic, tp.partition, exc, "" if looking else " (not asking again)",
                )
    finally:
        await client.close()


async def fence_expired(
    client: AIOKafkaClient, changelog: TopicPartition, stage_ids: re.Pattern[str], own_id: str
) -> list[OpenTransaction]:
    """Fence every expired transaction of another worker of the stage that holds
    ``changelog``; returns those fenced."""
    ids: set[str] = set()
    for broker in sorted(client.cluster.brokers(), key=lambda b: b.nodeId):
        answer = await client.send(broker.nodeId, ListTransactions([ONGOING]))
        if answer.error_code:
            raise for_code(answer.error_code)(f"ListTransactions: {error_name(answer.error_code)}")
        ids.update(candidates(answer.transaction_states, stage_ids, own_id))
    if not ids:
        return []
    by_coordinator: dict[int, list[str]] = defaultdict(list)
    for txn_id in sorted(ids):
        node = await client.coordinator_lookup(CoordinationType.TRANSACTION, txn_id)
        by_coordinator[node].append(txn_id)
    described: list[OpenTransaction] = []
    for node, txn_ids in by_coordinator.items():
        answer = await client.send(
            node, DescribeTransactions(txn_ids), group=ConnectionGroup.COORDINATION
        )
        described += open_transactions(answer.transaction_states)
    now_ms = int(time.time() * 1000)
    chosen = to_fence(described, changelog, now_ms)
    for txn in chosen:
        await fence(client, txn.transactional_id, txn.timeout_ms)
        log.warning(
            "%s[%d]: fenced transactional id %s (producer %d, epoch %d): its transaction was "
            "open for %.1fs, past its %.1fs timeout; its previous owner is gone",
            changelog.topic, changelog.partition, txn.transactional_id, txn.producer_id,
            txn.producer_epoch, (now_ms - txn.started_ms) / 1000, txn.timeout_ms / 1000,
        )
    return chosen


async def fence(
    client: AIOKafkaClient, transactional_id: str, timeout_ms: int,
    give_up_s: float = FENCE_TIMEOUT_S,
) -> None:
    """InitProducerId on ``transactional_id``: its open transaction is aborted and its
    producer fenced. Returns once the coordinator has done both (it answers
    CONCURRENT_TRANSACTIONS while it writes the abort markers); raises the last error after
    ``give_up_s``, or at once one no retry gets past (authorization)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + give_up_s
    node: int | None = None
    while True:
        if node is None:
            node = await client.coordinator_lookup(CoordinationType.TRANSACTION, transactional_id)
        answer = await client.send(
            node, InitProducerIdRequest(transactional_id, timeout_ms),
            group=ConnectionGroup.COORDINATION,
        )
        code = answer.error_code
        if code == 0:
            return
        if (code not in _RETRY and code not in _NEW_COORDINATOR) or loop.time() >= deadline:
            raise for_code(code)(f"InitProducerId of {transactional_id}: {error_name(code)}")
        if code in _NEW_COORDINATOR:
            node = None
        await asyncio.sleep(FENCE_BACKOFF_S)
