"""What a running worker holds: its stages, tables, read models and metrics."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import faust

from app.engine.failures import PartitionUnavailable
from app.engine.identity import transactional_id, worker_id
from app.engine.partitions import OwnedPartitions, ProcessorFactory
from app.engine.reader import StageReader
from app.engine.runner import StageRunner
from app.engine.standby import StandbyKeeper, StandbyStage, wanted_standbys
from app.engine.stall import CommitWatch
from app.engine.store import rocksdb_options
from app.metrics import Metrics, RateSampler
from app.models.dead_letter import DeadLetterRoute
from app.properties.aggregate import PropertyState
from app.readmodels.insights import InsightsMemory
from app.readmodels.partials import PartialsView, partials_tail
from app.readmodels.tail import TopicTail
from app.settings import Settings
from app.stages.profile_rejects import ProfileRejectsProcessor
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.stages.segments import SegmentUsersProcessor
from app.stages.views import ViewsConfig, ViewsProcessor
from app.tables.profiles import ProfilesTable
from app.tables.profiles_reader import ProfilesReader

RATES_KEEP_SECONDS = 60


@dataclass(frozen=True)
class StageSpec:
    """One stage, declared once; its runner, agent and commit timer are made from it."""

    name: str  # its state directory, transactional id and log lines
    agent: str  # the faust agent that subscribes its source topic for the group
    source: str
    changelog: str
    commit_s: float
    factory: ProcessorFactory
    check_gaps: bool = False
    waits_for_profiles: bool = False  # no record applied before the profiles table is read
    reads_from: str | None = None  # the stage whose same partition it reads (opened first)


class Runtime:
    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.metrics = Metrics()
        self.metrics.declare_topics(settings.views_topic, settings.profiles_topic)
        # Per-second rates of the views consumed, for the dashboard (sampled on a timer).
        self.rates = RateSampler(keep_seconds=RATES_KEEP_SECONDS)
        self._client_kwargs = settings.kafka_client_kwargs()
        # Commits and openings waiting on the brokers: a stall is logged and shown on /ready.
        self.commit_watch = CommitWatch(
            settings.commit_stall_alert_seconds,
            on_error=lambda exc: self.metrics.commit_errors.labels(type(exc).__name__).inc(),
        )
        self._options = rocksdb_options(
            settings.rocksdb_block_cache_bytes,
            settings.rocksdb_write_buffer_bytes,
            settings.rocksdb_memtables_bytes,
        )

        # The global table the views are joined through, and what keeps it up to date.
        self.profiles = ProfilesTable(settings.data_dir / "profiles", self._options)
        self.profiles_reader = ProfilesReader(
            self.profiles,
            settings.profiles_topic,
            self._client_kwargs,
            settings.max_value_bytes,
            self.metrics,
        )
        self.specs = self._specs()
        self._runners: dict[str, StageRunner] = {}
        # A stage that reads another's partitions is made after it; ``stages`` keeps the
        # table's order (the views before the properties they read: on a revocation the views
        # of a partition commit and close before its properties do).
        for spec in sorted(self.specs, key=lambda spec: spec.reads_from is not None):
            self._runners[spec.name] = self._stage(spec)
        self.stages = tuple(self._runners[spec.name] for spec in self.specs)
        self.views, self.segments, self.profile_rejects, self.properties = self.stages
        # Copies of other workers' partitions, to take them over with only a tail to restore.
        self.standbys = StandbyKeeper(
            [
                StandbyStage(stage.owned.name, stage.owned.changelog_topic, stage.owned.store_path)
                for stage in self.stages
            ],
            self._options,
            self._client_kwargs,
            active_opened=lambda: all(stage.ready for stage in self.stages),
        )
        self.partials = PartialsView()
        self.insights = InsightsMemory(settings.insights_memory)
        self.tails = self._tails()

    @functools.cached_property
    def worker_id(self) -> str:
        """What this worker's stages' transactional ids end with, kept in its data dir (made
        when the first partition opens, not by commands that run no stage)."""
        return worker_id(self.settings.data_dir)

    def property_at(self, partition: int) -> Callable[[str, int], PropertyState | None]:
        """For the views of ``partition``: a property's state at a time, read from the
        properties stage's same partition (opened first: ``StageRunner(requires=...)``)."""
        owned = self.properties.owned
        source = owned.source_topic

        def state_at(property_id: str, ts_ms: int) -> PropertyState | None:
            processor = owned.processor(partition)
            if processor is None:  # closed under a running batch: replay it, never guess
                raise PartitionUnavailable(f"{source}[{partition}] is not open on this worker")
            return processor.state_at(property_id, ts_ms)

        return state_at

    def _specs(self) -> tuple[StageSpec, ...]:
        """The worker's stages, in the order they commit and close."""
        s = self.settings
        views_config = ViewsConfig.from_settings(s)
        properties_config = PropertiesConfig.from_settings(s)
        return (
            # property.views -> hourly and weekly tables, insights, dead letters, views-by-user
            StageSpec(
                "views", "property_views", s.views_topic, s.views_changelog_topic,
                s.views_commit_interval_seconds,
                lambda partition, store, outbox: ViewsProcessor(
                    partition, store, outbox, views_config, self.profiles.segment_of,
                    self.property_at(partition),
                ),
                check_gaps=s.views_gap_check,
                # Like a Kafka Streams GlobalKTable: no view is joined before the profiles
                # table holds every profile published before the worker started.
                waits_for_profiles=True,
                reads_from="properties",
            ),
            # views-by-user repartition topic -> exact unique users per (week, segment);
            # written by the views stage only, so a record of it that fails is a view's
            StageSpec(
                "segment-users", "segment_users", s.segments_repartition_topic,
                s.segments_changelog_topic, s.segments_commit_interval_seconds,
                functools.partial(
                    SegmentUsersProcessor,
                    partials_topic=s.partials_topic,
                    retention_weeks=s.weekly_retention_weeks,
                    publish_interval_s=s.partials_publish_seconds,
                    dead_letters=DeadLetterRoute(
                        s.segments_repartition_topic, s.dlq_views_topic, s.dlq_max_message_bytes
                    ),
                ),
            ),
            # user.profiles in the group: its invalid records to user.profiles.dlq, once each
            # (every worker's profiles table reads the topic itself: ProfilesReader)
            StageSpec(
                "profile-rejects", "user_profiles", s.profiles_topic,
                s.profile_rejects_changelog_topic, s.profiles_commit_interval_seconds,
                functools.partial(
                    ProfileRejectsProcessor,
                    source_topic=s.profiles_topic,
                    dlq_topic=s.dlq_profiles_topic,
                    max_bytes=s.max_value_bytes,
                    dlq_max_message_bytes=s.dlq_max_message_bytes,
                ),
            ),
            # property.events -> the property aggregate (state, history), dead letters
            StageSpec(
                "properties", "property_events", s.property_events_topic,
                s.properties_changelog_topic, s.properties_commit_interval_seconds,
                lambda partition, store, outbox: PropertiesProcessor(
                    partition, store, outbox, properties_config
                ),
            ),
        )

    def _stage(self, spec: StageSpec) -> StageRunner:
        s = self.settings
        name = spec.name
        owned = OwnedPartitions(
            name=name,
            app_id=s.app_id,
            source_topic=spec.source,
            changelog_topic=spec.changelog,
            data_dir=s.data_dir / "state",
            rocksdb_options=self._options,
            client_kwargs=self._client_kwargs,
            factory=spec.factory,
            transactional_id=lambda: transactional_id(s.app_id, name, self.worker_id),
            max_request_size=s.dlq_max_message_bytes,
            watch=self.commit_watch,
            on_fenced=self.metrics.takeovers_fenced.labels(name).inc,
        )
        reader = StageReader(
            spec.source,
            self._client_kwargs,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            fetch_min_bytes=s.fetch_min_bytes,
            max_partition_fetch_bytes=s.max_fetch_bytes,
            fetch_timeout_s=s.batch_max_seconds,
        )
        return StageRunner(
            self.app,
            owned,
            reader,
            self.metrics,
            s.batch_max_events,
            spec.commit_s,
            max_uncommitted=s.max_uncommitted_events,
            check_gaps=spec.check_gaps,
            start_after=self.profiles_reader.bootstrapped if spec.waits_for_profiles else None,
            requires=self._runners[spec.reads_from] if spec.reads_from else None,
            processing_errors=s.processing_errors,
        )

    def _tails(self) -> tuple[TopicTail, TopicTail]:
        s = self.settings
        skipped = self.metrics.readmodel_records_skipped
        return (
            partials_tail(
                self.partials,
                s.partials_topic,
                self._client_kwargs,
                on_skipped=skipped.labels(s.partials_topic).inc,
            ),
            TopicTail(
                s.insights_topic,
                self._client_kwargs,
                self.insights.apply,
                start_back=s.insights_memory,
                on_skipped=skipped.labels(s.insights_topic).inc,
            ),
        )

    def wanted_standbys(self) -> set[tuple[str, int]]:
        """The (stage, partition) copies the latest assignment asks this worker to keep."""
        active = {
            (stage.owned.name, partition)
            for stage in self.stages
            for partition in stage.assigned_partitions()
        }
        return wanted_standbys(
            ((stage.owned.name, stage.owned.source_topic) for stage in self.stages),
            ((tp.topic, tp.partition) for tp in self.app.assignor.assigned_standbys()),
            active,
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
            and self.commit_watch.stall() is None
        )
