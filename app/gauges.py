"""Every gauge of ``app.metrics``, set in one place from what the worker holds right now.

Counters and histograms count events where they happen. A gauge describes a state (readiness,
partitions open, keys stored, records behind), so it is read off the runtime here, on one
timer (``app.agents.lifecycle``), instead of being set from wherever that state changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.engine.store import total_memory


if TYPE_CHECKING:
    from app.runtime import Runtime


def refresh(runtime: Runtime) -> None:
    metrics = runtime.metrics
    metrics.ready.set(1 if runtime.ready else 0)
    memory = []
    metrics.recovery_complete.set(1 if runtime.recovered else 0)
    metrics.commits_stalled.set(0 if runtime.commit_watch.stall() is None else 1)
    metrics.commit_wait_seconds.set(runtime.commit_watch.oldest_seconds())
    for stage in runtime.stages:
        owned = stage.owned
        processors = [p for p in map(owned.processor, owned.partitions) if p is not None]
        metrics.owned_partitions.labels(owned.name).set(len(owned.partitions))
        metrics.table_keys.labels(owned.name).set(sum(p.store.estimated_keys() for p in processors))
        memory.extend(p.store.memory() for p in processors)
    # Standby copies hold memory too (the same shared cache and memtable bound).
    memory.extend(store.memory() for store in runtime.standbys.stores())
    metrics.set_standby_lag(runtime.standbys.lag)
    metrics.table_keys.labels("profiles").set(runtime.profiles.estimated_keys())
    memory.append(runtime.profiles.memory())
    for kind, size in total_memory(memory).items():
        metrics.rocksdb_memory.labels(kind).set(size)
    for partition, lag in runtime.profiles_reader.lag.items():
        metrics.profiles_lag.labels(str(partition)).set(lag)
    _consumer_lag(runtime)


def _consumer_lag(runtime: Runtime) -> None:
    """Records behind the end of each owned input partition; the series of partitions no
    longer owned are dropped (else they would stay frozen at their last value)."""
    metrics = runtime.metrics
    for stage in runtime.stages:
        owned = stage.owned
        for partition in owned.partitions:
            processor = owned.processor(partition)
            highwater = stage.highwater(partition)  # the stage's own reader fetches it
            if processor is not None and highwater is not None:
                lag = max(highwater - processor.applied_offset - 1, 0)
                metrics.consumer_lag.labels(owned.source_topic, str(partition)).set(lag)
    metrics.prune_lag({stage.owned.source_topic: stage.owned.partitions for stage in runtime.stages})
