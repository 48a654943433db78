"""``gauges.refresh``: every gauge read off the runtime in one pass; lag series of partitions
no longer owned are dropped, and a partition whose end its reader has not seen has none."""

from __future__ import annotations

from types import SimpleNamespace

from app import gauges
from app.engine.stall import CommitWatch
from app.metrics import PREFIX, Metrics


def stage(
    name: str, topic: str, applied: dict[int, int], keys: int, highwaters: dict[int, int] | None = None
) -> SimpleNamespace:
    processors = {
        p: SimpleNamespace(
            applied_offset=o,
            store=SimpleNamespace(
                estimated_keys=lambda: keys,
                # every database sees the one block cache they share
                memory=lambda: {"memtables": 1000, "table_readers": 10, "block_cache": 500},
            ),
        )
        for p, o in applied.items()
    }
    owned = SimpleNamespace(
        name=name, source_topic=topic, partitions=set(processors), processor=processors.get
    )
    # the end offsets the stage's reader saw (none yet for a partition it has not fetched)
    return SimpleNamespace(
        owned=owned, processors=processors, highwater=(highwaters or {}).get
    )


def standbys(lag: dict[tuple[str, int], int] | None = None, stores: int = 0) -> SimpleNamespace:
    store = SimpleNamespace(memory=lambda: {"memtables": 50, "table_readers": 5, "block_cache": 500})
    return SimpleNamespace(lag=lag or {}, stores=lambda: [store] * stores)


def runtime(
    stages: list, ready: bool = True, watch: CommitWatch | None = None, copies=None  # noqa: ANN001
) -> SimpleNamespace:
    return SimpleNamespace(
        standbys=copies or standbys(),
        metrics=Metrics(),
        commit_watch=watch or CommitWatch(15.0),
        ready=ready,
        recovered=True,
        stages=stages,
        profiles=SimpleNamespace(
            estimated_keys=lambda: 42,
            memory=lambda: {"memtables": 7, "table_readers": 1, "block_cache": 500},
        ),
        profiles_reader=SimpleNamespace(lag={0: 3, 1: 0}),
    )


def value(rt, name: str, **labels: str) -> float | None:  # noqa: ANN001
    return rt.metrics.registry.get_sample_value(PREFIX + name, labels)


def test_refresh_sets_every_gauge_from_the_runtime():
    # partition 1 of views: its reader has not fetched it yet
    views = stage("views", "views", {0: 9, 1: 4}, keys=100, highwaters={0: 15})
    users = stage("segment-users", "by-user", {2: 0}, keys=7, highwaters={2: 1})
    rt = runtime([views, users], ready=False)

    gauges.refresh(rt)

    assert value(rt, "ready") == 0 and value(rt, "table_recovery_complete") == 1
    assert value(rt, "owned_partitions", store="views") == 2
    assert value(rt, "owned_partitions", store="segment-users") == 1
    assert value(rt, "table_keys", store="views") == 200  # summed over its partitions
    assert value(rt, "table_keys", store="segment-users") == 7
    assert value(rt, "table_keys", store="profiles") == 42
    # three partition databases and the profiles': their own memory summed, the cache once
    assert value(rt, "rocksdb_memory_bytes", kind="memtables") == 3 * 1000 + 7
    assert value(rt, "rocksdb_memory_bytes", kind="table_readers") == 3 * 10 + 1
    assert value(rt, "rocksdb_memory_bytes", kind="block_cache") == 500
    assert value(rt, "profiles_lag_records", partition="0") == 3
    assert value(rt, "consumer_lag_records", topic="views", partition="0") == 5  # 15 - (9 + 1)
    assert value(rt, "consumer_lag_records", topic="by-user", partition="2") == 0
    assert value(rt, "consumer_lag_records", topic="views", partition="1") is None


def test_the_lag_of_a_partition_no_longer_owned_disappears():
    views = stage("views", "views", {0: 9, 1: 4}, keys=1, highwaters={0: 10, 1: 8})
    rt = runtime([views])
    gauges.refresh(rt)
    assert value(rt, "consumer_lag_records", topic="views", partition="1") == 3

    del views.processors[1]  # closed after a revocation
    views.owned.partitions = {0}
    gauges.refresh(rt)

    assert value(rt, "consumer_lag_records", topic="views", partition="1") is None
    assert value(rt, "consumer_lag_records", topic="views", partition="0") == 0
    assert value(rt, "owned_partitions", store="views") == 1


def test_a_stalled_commit_shows_in_the_gauges_until_it_ends():
    now = [100.0]
    watch = CommitWatch(15.0, clock=lambda: now[0])
    rt = runtime([], watch=watch)
    gauges.refresh(rt)
    assert value(rt, "commits_stalled") == 0 and value(rt, "commit_wait_seconds") == 0

    with watch.watching("views: commit of views[0]"):
        now[0] += 20
        gauges.refresh(rt)
        assert value(rt, "commits_stalled") == 1 and value(rt, "commit_wait_seconds") == 20

    gauges.refresh(rt)
    assert value(rt, "commits_stalled") == 0 and value(rt, "commit_wait_seconds") == 0


def test_standby_copies_show_their_lag_and_count_in_the_memory():
    copies = standbys({("views", 3): 12, ("properties", 3): 0}, stores=2)
    rt = runtime([stage("views", "views", {0: 9}, keys=1)], copies=copies)

    gauges.refresh(rt)

    assert value(rt, "standby_lag_records", stage="views", partition="3") == 12
    assert value(rt, "standby_lag_records", stage="properties", partition="3") == 0
    # one partition database, two copies and the profiles': the cache counted once
    assert value(rt, "rocksdb_memory_bytes", kind="memtables") == 1000 + 2 * 50 + 7
    assert value(rt, "rocksdb_memory_bytes", kind="block_cache") == 500

    copies.lag = {("views", 3): 4}  # the properties copy was dropped
    gauges.refresh(rt)
    assert value(rt, "standby_lag_records", stage="views", partition="3") == 4
    assert value(rt, "standby_lag_records", stage="properties", partition="3") is None
