"""Background work of a worker, all of it in one place: keep the profiles table up to date,
open assigned partitions, close revoked ones, commit what batches and punctuators left
uncommitted (on a timer and at shutdown), tail the read-model topics, and refresh the gauges
and the dashboard's rates."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Set

import faust
from faust.types import TP

from app import gauges
from app.engine.runner import fatal
from app.engine.transactions import Failure, classify
from app.runtime import Runtime

log = logging.getLogger(__name__)

MONITOR_SECONDS = 1.0


async def _logged(work: Awaitable[None], what: str) -> None:
    """Background work whose failure is logged; the next event retries it inline. A failure
    that would repeat every time (a missing ACL: the stage's transactional producer is
    refused) ends the worker with the cause instead of leaving it up and never ready."""
    try:
        await work
    except Exception as exc:  # noqa: BLE001
        if classify(exc) is Failure.REFUSED:
            fatal(
                f"{what}: refused for good ({exc!r}): a missing ACL (see `faust -A app.main "
                "acls`) or a topic setting"
            )
        log.exception("%s failed; will retry when its partitions receive events", what)


def register(app: faust.App, runtime: Runtime) -> None:
    _rebalance_hooks(app, runtime)
    _commit_timers(app, runtime)
    _background_tasks(app, runtime)


def _rebalance_hooks(app: faust.App, runtime: Runtime) -> None:
    @app.on_partitions_revoked.connect
    async def on_revoked(sender: faust.App, revoked: Set[TP], **_: object) -> None:
        for stage in runtime.stages:
            mine = {tp.partition for tp in revoked if tp.topic == stage.owned.source_topic}
            if mine:
                await stage.on_revoked(mine)

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: faust.App, assigned: Set[TP], **_: object) -> None:
        generation = app.consumer_generation_id
        # Before any stage may open its new partitions: a copy kept here of one that is now
        # active here is closed first, and the stage's opening restores only its tail.
        await runtime.standbys.update(runtime.wanted_standbys())
        for stage in runtime.stages:
            stage.on_assigned(generation)
            app.add_future(
                _logged(stage.open_assigned(generation), f"opening {stage.owned.name} partitions")
            )


def _commit_timers(app: faust.App, runtime: Runtime) -> None:
    commit_check_s = min(spec.commit_s for spec in runtime.specs)

    # A safety net: each round starts the next itself (``StageRunner._round_ended``), and a
    # fetch starts one when it is due. Woken more often, it mostly queues on busy stages' locks
    # (and faust logs each overlap).
    @app.timer(max(commit_check_s / 2, 0.05))
    async def commit_due() -> None:
        for stage in runtime.stages:
            await stage.commit_due()

    @app.on_before_shutdown.connect
    async def commit_before_shutdown(sender: faust.App, **_: object) -> None:
        for stage in runtime.stages:
            await stage.commit_all()
        await runtime.standbys.stop()


def _background_tasks(app: faust.App, runtime: Runtime) -> None:
    views_topic = runtime.settings.views_topic

    @app.task
    async def read_profiles() -> None:
        """From worker start, not from the first assignment: the views wait for it."""
        await runtime.profiles_reader.run()

    @app.task
    async def tail_read_models() -> None:
        await asyncio.gather(*(tail.run() for tail in runtime.tails))

    @app.timer(MONITOR_SECONDS)
    async def refresh_gauges() -> None:
        runtime.commit_watch.check()  # logs when a stall starts and ends
        gauges.refresh(runtime)
        runtime.rates.sample(time.monotonic(), runtime.metrics.snapshot(views_topic))
