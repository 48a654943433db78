"""The worker: ``faust -A app.main worker -l info``.

``create_app(settings)`` builds the faust App and wires topics, tables, agents and web views;
``app`` is the one built from the environment, for the faust command line.
"""

from __future__ import annotations

import gc
import logging

import faust
from yarl import URL

from app import agents, commands, membership, web
from app.access import check_connection, check_privileges
from app.engine.faust_fixes import leave_to_stages
from app.engine.identity import worker_id
from app.engine.standby_assignor import StandbyAssignor
from app.runtime import Runtime
from app.settings import Settings
from app.settings_errors import fail, settings_or_exit
from app.topics import ensure_topics
from app.web.exposure import exposure_problem

log = logging.getLogger(__name__)


class AnalyticsApp(faust.App):
    """faust.App that creates every topic of the product before anything subscribes."""

    runtime: Runtime
    standby_replicas: int

    async def on_first_start(self) -> None:
        leave_to_stages(self, {stage.owned.source_topic for stage in self.runtime.stages})
        settings = self.runtime.settings
        # faust creates the data dir without its parents (./data on a fresh clone).
        self.runtime.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.client_only:
            # A wrong password, an untrusted CA or a missing ACL stops the worker here, with
            # a message that names it, instead of a worker that retries quietly (app.access).
            await check_connection(settings)
            await check_privileges(settings)  # the topics that exist, and the group
            created = await ensure_topics(settings)
            if created:
                log.info("created topics: %s", ", ".join(created))
                await check_privileges(settings)  # and the topics just created
        await super().on_first_start()
        # What exists now (modules, the app, its agents, tables and views) lives as long as
        # the worker: frozen, it is out of the collector's way, and a full collection walks
        # the objects of the work instead (docs/measurements.md: 5.4 -> 2.6 % of its CPU).
        gc.collect()
        gc.freeze()


class AnalyticsWorker(faust.Worker):
    """The worker of ``faust -A app.main worker`` (only that command builds this class).

    It refuses to start, with one line and exit code 2, when its HTTP server would serve
    every answer without a token on an address others can reach (``app.web.exposure``);
    checked here, before anything starts, with the bind address the command line may have
    changed (``--web-bind``)."""

    def __init__(self, app: faust.App, *services: object, **kwargs: object) -> None:
        runtime = getattr(app, "runtime", None)
        if app.conf.web_enabled and runtime is not None:
            settings = runtime.settings
            problem = exposure_problem(
                app.conf.web_bind,
                settings.api_token is not None,
                settings.allow_unauthenticated_http,
            )
            if problem:
                fail(problem)
        super().__init__(app, *services, **kwargs)


def use_event_loop(name: str) -> None:
    """Install the event loop policy before faust creates its loop (uvloop is faster)."""
    if name == "uvloop":
        import asyncio

        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def create_app(settings: Settings | None = None) -> AnalyticsApp:
    settings = settings or Settings()
    servers = ";".join(s.strip() for s in settings.kafka_bootstrap_servers.split(","))
    canonical = settings.worker_canonical_url or URL.build(
        scheme="http", host=settings.worker_web_host, port=settings.worker_web_port
    )
    app = AnalyticsApp(
        settings.app_id,
        broker=f"kafka://{servers}",
        broker_credentials=settings.faust_credentials(),
        datadir=str(settings.data_dir),
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
        web_bind=settings.worker_web_host,
        canonical_url=str(canonical),
        # faust's built-in pages: /table shows table data, /router the workers' URLs and
        # partitions, the statistics and graph pages internals; none is part of the API.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        web_application_options=web.application_options(settings, str(canonical)),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        topic_allow_declare=True,
        topic_disable_leader=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval_seconds,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        # faust's assignor places standbys of every subscribed topic's partitions, and prefers
        # a partition's standby when its active moves (app.engine.standby). At 0 faust would
        # drop its assignor for aiokafka's round robin (no copartitioning, no routing map):
        # it is given 1, and StandbyAssignor places STANDBY_REPLICAS copies, 0 included.
        table_standby_replicas=max(settings.standby_replicas, 1),
        PartitionAssignor=StandbyAssignor,  # faust's, with the standbys spread evenly
        consumer_group_instance_id=membership.instance_id(
            settings.group_instance_id, settings.app_id, lambda: worker_id(settings.data_dir)
        ),
        consumer_max_fetch_size=settings.max_fetch_bytes,
        producer_acks=-1,
        web_cors_options=None,
        Worker=AnalyticsWorker,
    )
    app.runtime = Runtime(app, settings)
    app.standby_replicas = settings.standby_replicas  # what StandbyAssignor places
    agents.register(app, app.runtime)
    web.register(app, app.runtime)

    @app.command()
    async def create_topics(self: faust.cli.AppCommand) -> None:
        """Create every topic of the product (idempotent), then exit."""
        await check_connection(settings)
        created = await ensure_topics(settings)
        print("created: " + (", ".join(created) if created else "nothing, all topics exist"))

    @app.command()
    async def watch_insights(self: faust.cli.AppCommand) -> None:
        """Print insights as they are published (committed only), one JSON per line."""
        from app.readmodels.tail import TopicTail

        def show(key: bytes | None, value: bytes | None) -> None:
            if value is not None:
                print(value.decode(), flush=True)

        await TopicTail(settings.insights_topic, settings.kafka_client_kwargs(), show).run()

    commands.register(app, settings)  # replay, diff, promote, export-topics, apply-topics, acls, redrive
    return app


_settings = settings_or_exit()  # a bad value: one line naming it, exit 2, no traceback
use_event_loop(_settings.event_loop)
app = create_app(_settings)
