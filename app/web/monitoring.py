"""Metrics refreshed on timers (throughput samples, table sizes, readiness, stale lag series)
and this worker's monitoring summary for ``/api/dashboard``."""

from __future__ import annotations

import logging
import time

import faust

from app.metrics import RateSampler
from app.runtime import Runtime

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 1.0
TABLE_SIZES_SECONDS = 10.0
LAG_PRUNE_SECONDS = 5.0
ESTIMATE_KEYS = "rocksdb.estimate-num-keys"


class Monitoring:
    def __init__(self, app: faust.App, runtime: Runtime) -> None:
        self._app = app
        self._runtime = runtime
        self._views_topic = runtime.settings.views_topic
        self.sampler = RateSampler(keep_seconds=60)
        runtime.metrics.declare_topics(runtime.settings.views_topic, runtime.settings.profiles_topic)

    def register(self) -> None:
        app = self._app

        @app.timer(SAMPLE_SECONDS)
        async def sample_throughput() -> None:
            self.sample()

        @app.timer(TABLE_SIZES_SECONDS)
        async def measure_table_sizes() -> None:
            self.measure_table_sizes()

        @app.timer(LAG_PRUNE_SECONDS)
        async def prune_lag() -> None:
            runtime = self._runtime
            runtime.metrics.prune_lag(
                {stage.owned.source_topic: stage.owned.partitions for stage in runtime.stages}
            )

    def sample(self) -> None:
        metrics = self._runtime.metrics
        self.sampler.sample(time.monotonic(), metrics.snapshot(self._views_topic))
        metrics.ready.set(1 if self._runtime.ready else 0)
        metrics.recovery_complete.set(1 if self._runtime.recovered else 0)

    def measure_table_sizes(self) -> None:
        runtime = self._runtime
        metrics = runtime.metrics
        for stage in runtime.stages:
            owned = stage.owned
            keys = 0
            for partition in owned.partitions:
                processor = owned.processor(partition)
                if processor is not None:
                    keys += _estimate_keys(processor.store._db)  # noqa: SLF001
            metrics.table_keys.labels(owned.name).set(keys)
            metrics.owned_partitions.labels(owned.name).set(len(owned.partitions))
        metrics.table_keys.labels("profiles").set(runtime.profiles.estimated_keys())

    def summary(self) -> dict:
        """What this worker adds to ``/api/dashboard``."""
        metrics = self._runtime.metrics
        return {
            "eventsPerSecond": self.sampler.rate("consumed"),
            "series": self.sampler.series("consumed"),
            "totals": metrics.snapshot(self._views_topic),
            "rejectedByReason": metrics.rejected_by_reason(self._views_topic),
            "lag": metrics.lag(),
        }


def _estimate_keys(db) -> int:  # noqa: ANN001 - rocksdict.Rdict
    try:
        return int(db.property_int_value(ESTIMATE_KEYS) or 0)
    except Exception:  # noqa: BLE001 - closed meanwhile, or not a RocksDB: count nothing
        log.debug("no key estimate from %r", db, exc_info=True)
        return 0
