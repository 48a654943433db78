"""Work-arounds for faust-streaming 0.15.3, each applied to one app at start-up.

Each is proved by a test in ``tests/unit/test_faust_fixes.py`` or the integration suite.
"""

from __future__ import annotations

from collections import defaultdict

import faust


class _UntrackedReadOffsets(defaultdict):
    """faust's per-partition read offsets, minus the stage topics.

    faust drops a fetched record below the read offset it last recorded. After a seek,
    records fetched before it still arrive and move that offset up, so the re-read records
    are dropped and lost. The stages track what they applied themselves (idempotently, see
    ``app.engine.ordering``), so for their topics faust records nothing and drops nothing.
    """

    def __init__(self, topics: set[str]) -> None:
        super().__init__(lambda: None)
        self._topics = frozenset(topics)

    def __getitem__(self, tp):  # noqa: ANN001, ANN204
        return None if tp.topic in self._topics else super().__getitem__(tp)

    def __setitem__(self, tp, offset) -> None:  # noqa: ANN001
        if tp.topic not in self._topics:
            super().__setitem__(tp, offset)

    def update(self, other=(), **kwargs) -> None:  # noqa: ANN001
        for tp, offset in dict(other, **kwargs).items():
            self[tp] = offset


def untrack_read_offsets(app: faust.App, topics: set[str]) -> None:
    """Stop faust from dropping re-read records of ``topics`` (see ``_UntrackedReadOffsets``)."""
    app.consumer._read_offset = _UntrackedReadOffsets(topics)  # noqa: SLF001


def tune_worker_consumer(app: faust.App, fetch_max_wait_ms: int, fetch_min_bytes: int = 1) -> None:
    """Make faust's worker consumer read only committed records, and wait less for data.

    - faust reads ``read_committed`` only under its own ``exactly_once`` guarantee, which we
      do not use. Our stages write their outputs (the views-by-user repartition topic among
      them) in Kafka transactions, so a ``read_uncommitted`` consumer would apply records of
      transactions that are later aborted (a worker killed mid-batch) and count them twice
      once the batch is redone, possibly for another segment.
    - faust hard-codes ``fetch_max_wait_ms=1500``. aiokafka keeps one fetch in flight per
      broker, and leaves out of it the partitions whose records are still buffered; when the
      request holds only partitions without new data, the broker sits on it for the full
      wait, and the busy partitions wait with it: 1-1.5 s of latency per view and a slow
      tail at the end of a backlog (measured with ``make bench``).

    Call before the consumer starts.
    """
    thread = app.consumer._thread  # noqa: SLF001
    if getattr(thread, "_consumer", None) is not None:
        raise RuntimeError("tune_worker_consumer(app) must run before faust's consumer is created")
    create = thread._create_worker_consumer  # noqa: SLF001

    def create_tuned(transport):  # noqa: ANN001, ANN202
        consumer = create(transport)
        # Read by AIOKafkaConsumer.start() when it creates its fetcher.
        consumer._isolation_level = "read_committed"  # noqa: SLF001
        consumer._fetch_max_wait_ms = fetch_max_wait_ms  # noqa: SLF001
        consumer._fetch_min_bytes = fetch_min_bytes  # noqa: SLF001
        return consumer

    thread._create_worker_consumer = create_tuned  # noqa: SLF001


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
