"""Background work of a worker: open assigned partitions, close revoked ones, publish
throttled segment shares, tail the read-model topics, measure consumer lag."""

from __future__ import annotations

import asyncio
from collections.abc import Set

import faust
from faust.types import TP

from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    metrics = runtime.metrics

    @app.on_partitions_revoked.connect
    async def on_revoked(sender: faust.App, revoked: Set[TP], **_: object) -> None:
        for stage in runtime.stages:
            mine = {tp.partition for tp in revoked if tp.topic == stage.owned.source_topic}
            if mine:
                await stage.on_revoked(mine)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: faust.App, assigned: Set[TP], **_: object) -> None:
        for stage in runtime.stages:
            app.add_future(stage.open_assigned())

    @app.timer(max(settings.partials_publish_seconds, 0.2))
    async def publish_pending_shares() -> None:
        for stage in runtime.stages:
            await stage.publish_pending()

    @app.timer(5.0)
    async def measure_lag() -> None:
        consumer = app.consumer
        committed = consumer._committed_offset  # noqa: SLF001  (faust keeps no public copy)
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = max(highwater - (committed.get(tp) or 0), 0)
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
        metrics.recovery_complete.set(1 if runtime.recovered else 0)
        for stage in runtime.stages:
            metrics.owned_partitions.labels(stage.owned.name).set(len(stage.owned.partitions))

    @app.task
    async def tail_read_models() -> None:
        await asyncio.gather(*(tail.run() for tail in runtime.tails))
