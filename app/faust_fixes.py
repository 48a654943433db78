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
    ``StageRunner._in_order``), so for their topics faust records nothing and drops nothing.
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


def read_committed(app: faust.App) -> None:
    """Make faust's worker consumer read only committed records.

    faust reads ``read_committed`` only under its own ``exactly_once`` guarantee, which we
    do not use. Our stages write their outputs (the views-by-user repartition topic among
    them) in Kafka transactions, so a ``read_uncommitted`` consumer would apply records of
    transactions that are later aborted (a worker killed mid-batch) and count them twice
    once the batch is redone, possibly for another segment. Call before the consumer starts.
    """
    thread = app.consumer._thread  # noqa: SLF001
    if getattr(thread, "_consumer", None) is not None:
        raise RuntimeError("read_committed(app) must run before faust's consumer is created")
    create = thread._create_worker_consumer  # noqa: SLF001

    def create_read_committed(transport):  # noqa: ANN001, ANN202
        consumer = create(transport)
        consumer._isolation_level = "read_committed"  # noqa: SLF001  read by start()
        return consumer

    thread._create_worker_consumer = create_read_committed  # noqa: SLF001
