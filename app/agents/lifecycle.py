"""Background work of a worker: keep the profiles table up to date, open assigned partitions,
close revoked ones, commit what batches left uncommitted (on a timer and at shutdown), publish
throttled segment shares, tail the read-model topics, measure consumer lag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Set

import faust
from faust.types import TP

from app.runtime import Runtime

log = logging.getLogger(__name__)


async def _logged(work: Awaitable[None], what: str) -> None:
    """Background work whose failure is logged; the next event retries it inline."""
    try:
        await work
    except Exception:  # noqa: BLE001
        log.exception("%s failed; will retry when its partitions receive events", what)


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
        generation = app.consumer_generation_id
        for stage in runtime.stages:
            stage.on_assigned(generation)
            app.add_future(
                _logged(stage.open_assigned(generation), f"opening {stage.owned.name} partitions")
            )

    commit_check_s = min(
        settings.views_commit_interval_seconds,
        settings.segments_commit_interval_seconds,
        settings.profiles_commit_interval_seconds,
    )

    @app.timer(max(commit_check_s / 2, 0.02))
    async def commit_due() -> None:
        for stage in runtime.stages:
            await stage.commit_due()

    @app.on_before_shutdown.connect
    async def commit_before_shutdown(sender: faust.App, **_: object) -> None:
        for stage in runtime.stages:
            await stage.commit_all()

    @app.task
    async def read_profiles() -> None:
        """From worker start, not from the first assignment: the views wait for it."""
        await runtime.profiles_reader.run()

    @app.timer(max(settings.partials_publish_seconds, 0.2))
    async def publish_pending_shares() -> None:
        for stage in runtime.stages:
            await stage.publish_pending()

    @app.timer(5.0)
    async def measure_lag() -> None:
        consumer = app.consumer
        assigned = consumer.assignment()
        for stage in runtime.stages:
            owned = stage.owned
            for partition in owned.partitions:
                tp = TP(owned.source_topic, partition)
                processor = owned.processor(partition)
                if tp not in assigned:  # highwater() asserts on unassigned partitions
                    continue
                highwater = consumer.highwater(tp)
                if processor is not None and highwater is not None:
                    lag = max(highwater - processor.applied_offset - 1, 0)
                    metrics.consumer_lag.labels(owned.source_topic, str(partition)).set(lag)
            metrics.owned_partitions.labels(owned.name).set(len(owned.partitions))
        metrics.recovery_complete.set(1 if runtime.recovered else 0)

    @app.task
    async def tail_read_models() -> None:
        await asyncio.gather(*(tail.run() for tail in runtime.tails))
