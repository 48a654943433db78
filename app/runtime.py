"""What a running worker holds: its stages, tables, read models and metrics."""

from __future__ import annotations

import asyncio
import functools

import faust

from app.metrics import Metrics
from app.pipeline.profiles import ProfilesWriter
from app.pipeline.runner import StageRunner
from app.pipeline.segments import SegmentUsersProcessor
from app.pipeline.views import ViewsConfig, ViewsProcessor
from app.readmodels import InsightsMemory, TopicTail, partials_tail
from app.settings import Settings
from app.state.partitions import OwnedPartitions
from app.state.store import rocksdb_options
from app.tables.changelog_repair import ChangelogRepair
from app.tables.partials import PartialsView
from app.tables.profiles import ProfileLookup, create_profiles_table
from app.topics import profiles_changelog_topic


class Runtime:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.metrics = Metrics()
        client_kwargs = settings.kafka_client_kwargs()
        options = rocksdb_options(
            settings.rocksdb_block_cache_bytes, settings.rocksdb_write_buffer_bytes
        )
        state_dir = settings.data_dir / "state"

        self.profiles_table = create_profiles_table(app, settings)
        self.profiles = ProfileLookup(self.profiles_table)
        self.profiles_table.on_change = self.profiles.changed
        self.profiles_repair = ChangelogRepair(
            self.profiles_table,
            profiles_changelog_topic(settings),
            client_kwargs,
            on_refetched=self.metrics.records_refetched.labels(
                profiles_changelog_topic(settings)
            ).inc,
        )
        self.profiles_table.on_gap = self.profiles_repair.request
        self.profiles_writer = ProfilesWriter(
            app, self.profiles_table, settings, self.metrics, on_deleted=self.profiles.deleted
        )
        self.profiles_bootstrapped = asyncio.Event()
        self.bootstrap_started = False  # the check that ends the startup snapshot

        def stage(  # noqa: ANN202
            name: str,
            source: str,
            changelog: str,
            commit_s: float,
            factory,  # noqa: ANN001
            check_gaps: bool = False,
        ):
            owned = OwnedPartitions(
                name=name,
                app_id=settings.app_id,
                source_topic=source,
                changelog_topic=changelog,
                data_dir=state_dir,
                rocksdb_options=options,
                client_kwargs=client_kwargs,
                factory=factory,
                max_request_size=settings.dlq_max_message_bytes,
            )
            return StageRunner(
                app,
                owned,
                self.metrics,
                settings.batch_max_events,
                settings.partials_publish_seconds,
                commit_s,
                check_gaps=check_gaps,
            )

        views_config = ViewsConfig.from_settings(settings)
        self.views = stage(
            "views",
            settings.views_topic,
            settings.views_changelog_topic,
            settings.views_commit_interval_seconds,
            lambda partition, store, outbox: ViewsProcessor(
                partition, store, outbox, views_config, self.profiles.segment_of
            ),
            check_gaps=settings.views_gap_check,
        )
        self.segments = stage(
            "segment-users",
            settings.segments_repartition_topic,
            settings.segments_changelog_topic,
            settings.segments_commit_interval_seconds,
            functools.partial(
                SegmentUsersProcessor,
                partials_topic=settings.partials_topic,
                retention_weeks=settings.weekly_retention_weeks,
            ),
        )
        self.stages = (self.views, self.segments)

        self.partials = PartialsView()
        self.insights = InsightsMemory(settings.insights_memory)
        skipped = self.metrics.readmodel_records_skipped
        self.tails = (
            partials_tail(
                self.partials,
                settings.partials_topic,
                client_kwargs,
                on_skipped=skipped.labels(settings.partials_topic).inc,
            ),
            TopicTail(
                settings.insights_topic,
                client_kwargs,
                self.insights.apply,
                start_back=settings.insights_memory,
                on_skipped=skipped.labels(settings.insights_topic).inc,
            ),
        )

    @property
    def recovered(self) -> bool:
        """faust's table recovery (the profiles GlobalTable) has completed."""
        return self.app.tables.recovery.completed.is_set()

    @property
    def ready(self) -> bool:
        return (
            self.recovered
            and self.profiles_bootstrapped.is_set()
            and all(stage.ready for stage in self.stages)
            and all(tail.caught_up.is_set() for tail in self.tails)
        )

