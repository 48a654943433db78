"""Background work of a worker: bootstrap profiles, open assigned partitions, close revoked
ones, commit what batches left uncommitted (on a timer and at shutdown), publish throttled
segment shares, tail the read-model topics, read again what faust lost of the profiles
changelog, measure consumer lag."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Set

import faust
from aiokafka.errors import KafkaError
from faust.types import TP

from app.runtime import Runtime
from app.tables.profiles import wait_bootstrapped
from app.topics import profiles_changelog_topic

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
        await runtime.profiles_writer.forget(
            tp.partition for tp in revoked if tp.topic == settings.profiles_topic
        )
        for stage in runtime.stages:
            mine = {tp.partition for tp in revoked if tp.topic == stage.owned.source_topic}
            if mine:
                await stage.on_revoked(mine)

    async def bootstrap_profiles() -> None:
        while not runtime.profiles_bootstrapped.is_set():
            try:
                await wait_bootstrapped(
                    runtime.profiles_table, settings, profiles_changelog_topic(settings)
                )
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.warning("profiles bootstrap check failed (%r); retrying", exc)
                await asyncio.sleep(1.0)
                continue
            runtime.profiles_bootstrapped.set()
            runtime.profiles.forget_startup()

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: faust.App, assigned: Set[TP], **_: object) -> None:
        if not runtime.profiles_bootstrapped.is_set() and not runtime.bootstrap_started:
            runtime.bootstrap_started = True
            app.add_future(_logged(bootstrap_profiles(), "bootstrapping profiles"))
        generation = app.consumer_generation_id
        for stage in runtime.stages:
            stage.on_assigned(generation)
            app.add_future(
                _logged(stage.open_assigned(generation), f"opening {stage.owned.name} partitions")
            )

    commit_check_s = min(
        settings.views_commit_interval_seconds, settings.segments_commit_interval_seconds
    )

    @app.timer(max(commit_check_s / 2, 0.02))
    async def commit_due() -> None:
        for stage in runtime.stages:
            await stage.commit_due()

    @app.on_before_shutdown.connect
    async def commit_before_shutdown(sender: faust.App, **_: object) -> None:
        for stage in runtime.stages:
            await stage.commit_all()

    @app.timer(settings.profiles_audit_seconds)
    async def audit_profiles() -> None:
        try:
            await runtime.profiles_writer.audit()
            await runtime.profiles_repair.audit()
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            log.warning("profiles audit failed (%r); retrying", exc)

    @app.on_before_shutdown.connect
    async def stop_profiles_readers(sender: faust.App, **_: object) -> None:
        await runtime.profiles_writer.stop()
        await runtime.profiles_repair.stop()

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
