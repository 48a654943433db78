"""Work-arounds for faust-streaming 0.15.3, each applied to one app at start-up.

Each is proved by a test in ``tests/unit/test_faust_fixes.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Set

import faust
from aiokafka import TopicPartition


def leave_to_stages(app: faust.App, topics: Set[str]) -> None:
    """Keep faust's consumer from fetching ``topics``: the stages read them themselves.

    faust has no way to subscribe to a topic, so that the group assigns its partitions, yet
    leave its records to someone else: its fetcher hands every record of every assigned
    partition to the topic's agent, one Event at a time (``app.engine.reader`` says why the
    stages read them themselves). So, for the stage topics:

    - the aiokafka consumer in faust's consumer thread pauses their partitions as they are
      assigned (before the rebalance listener faust gives it runs): it sends no fetch for
      them, and drops what it fetched between the assignment and the pause;
    - faust's fetch loop leaves them out of the partitions it asks that consumer for (faust's
      own pause list is rewritten by its table recovery, so it cannot hold them);
    - faust's livelock check leaves them out: it would log an error for each of them every
      few seconds, from ``stream_processing_timeout`` (5 minutes) after the start on, since
      faust never fetches them. The stages report their own stalls (``app.engine.stall``)
      and lag.

    Call before the consumer starts (``on_first_start``).
    """
    topics = frozenset(topics)
    consumer = app.consumer
    fetch = consumer._getmany  # noqa: SLF001

    async def getmany(active_partitions, timeout: float):  # noqa: ANN001, ANN202
        if active_partitions is not None:
            active_partitions = {tp for tp in active_partitions if tp.topic not in topics}
            if not active_partitions:  # an empty set would ask aiokafka for every partition
                await asyncio.sleep(timeout)
                return {}
        return await fetch(active_partitions, timeout)

    consumer._getmany = getmany  # noqa: SLF001

    verify = consumer.verify_event_path

    def verify_event_path(now: float, tp) -> None:  # noqa: ANN001
        if tp.topic not in topics:
            verify(now, tp)

    consumer.verify_event_path = verify_event_path

    thread = consumer._thread  # noqa: SLF001
    on_assigned = thread.on_partitions_assigned

    async def pause_then_on_assigned(assigned: Iterable, generation: int) -> None:  # noqa: ANN001
        assigned = set(assigned)
        stage_tps = [TopicPartition(tp.topic, tp.partition) for tp in assigned if tp.topic in topics]
        if stage_tps:
            thread._ensure_consumer().pause(*stage_tps)  # noqa: SLF001
        await on_assigned(assigned, generation)

    thread.on_partitions_assigned = pause_then_on_assigned


def request_rejoin(app: faust.App) -> bool:
    """Ask the consumer group for a rebalance, as Kafka Streams' ``enforceRebalance`` does after
    a task migrated; False when the consumer does not exist yet.

    faust offers no call for it. Its aiokafka consumer lives on faust's consumer thread, with
    an event loop of its own: the request goes there with ``call_soon_threadsafe`` and is not
    waited for (a rebalance in progress on that thread may be waiting for this loop).
    """
    thread = getattr(app.consumer, "_thread", None)
    consumer = getattr(thread, "_consumer", None)
    if consumer is None or getattr(consumer, "_coordinator", None) is None:
        return False
    thread.thread_loop.call_soon_threadsafe(consumer._coordinator.request_rejoin)  # noqa: SLF001
    return True
