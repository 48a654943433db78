"""What a running worker holds: its stages, tables, read models and metrics."""

from __future__ import annotations

import asyncio
import functools

import faust

from app.metrics import Metrics
from app.stages.profile_rejects import ProfileRejectsProcessor
from app.engine.runner import StageRunner
from app.stages.segments import SegmentUsersProcessor
from app.stages.views import ViewsConfig, ViewsProcessor
from app.readmodels.insights import InsightsMemory
from app.readmodels.partials import PartialsView, partials_tail
from app.readmodels.tail import TopicTail
from app.settings import Settings
from app.engine.partitions import OwnedPartitions
from app.engine.store import rocksdb_options
from app.tables.profiles import ProfilesTable
from app.tables.profiles_reader import ProfilesReader


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

        # The global table the views are joined through, and what keeps it up to date.
        self.profiles = ProfilesTable(settings.data_dir / "profiles", options)
        self.profiles_reader = ProfilesReader(
            self.profiles,
            settings.profiles_topic,
            client_kwargs,
            settings.max_value_bytes,
            self.metrics,
        )

        def stage(  # noqa: ANN202
            name: str,
            source: str,
            changelog: str,
            commit_s: float,
            factory,  # noqa: ANN001
            check_gaps: bool = False,
            start_after: asyncio.Event | None = None,
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
                start_after=start_after,
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
            # Like a Kafka Streams GlobalKTable: no view is joined before the profiles table
            # holds every profile published before the worker started.
            start_after=self.profiles_reader.bootstrapped,
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
        # user.profiles in the group: its invalid records to user.profiles.dlq, once each.
        self.profile_rejects = stage(
            "profile-rejects",
            settings.profiles_topic,
            settings.profile_rejects_changelog_topic,
            settings.profiles_commit_interval_seconds,
            functools.partial(
                ProfileRejectsProcessor,
                source_topic=settings.profiles_topic,
                dlq_topic=settings.dlq_profiles_topic,
                max_bytes=settings.max_value_bytes,
            ),
        )
        self.stages = (self.views, self.segments, self.profile_rejects)

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
        """The profiles table has bootstrapped and faust has resumed the streams after the
        latest rebalance (the stages' partitions are restored as they open: ``ready``)."""
        return (
            self.profiles_reader.bootstrapped.is_set()
            and self.app.tables.recovery.completed.is_set()
        )

    @property
    def ready(self) -> bool:
        return (
            self.recovered
            and all(stage.ready for stage in self.stages)
            and all(tail.caught_up.is_set() for tail in self.tails)
        )

