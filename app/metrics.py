"""Prometheus metrics of CONTRACT §6 (names follow Prometheus conventions).

Every family carries the ``property_analytics_`` prefix, counters end in ``_total``,
durations are histograms in seconds. ``GET /metrics`` serves ``registry``;
``GET /api/dashboard`` reads the same numbers through ``snapshot`` and ``RateSampler``.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections import deque
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import disable_created_metrics

from app.codec import REASONS
from app.models.insights import PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND

# ``*_created`` series double every counter's output and tell nobody anything here.
disable_created_metrics()

PREFIX = "property_analytics_"
# Durations of a batch's processing and of a commit round.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
INSIGHT_TYPES = (PROPERTY_HOURLY_SPIKE, SEGMENT_PROPERTY_TREND)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry

        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(PREFIX + name, doc, labels, registry=r)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(PREFIX + name, doc, labels, registry=r)

        def histogram(name: str, doc: str, *labels: str, buckets: tuple[float, ...]) -> Histogram:
            return Histogram(PREFIX + name, doc, labels, registry=r, buckets=buckets)

        self.events_consumed = counter(
            "events_consumed_total", "Input records consumed, by topic", "topic",
        )
        self.events_accepted = counter("events_accepted_total", "Views accepted into the windows")
        self.events_duplicate = counter(
            "events_duplicate_total", "Views skipped as duplicates of an accepted eventId",
        )
        self.events_late = counter(
            "events_late_total",
            "Late views, by the window they missed: window=\"hour\" counts accepted views left out "
            "of their hourly window only; window=\"week\" counts views late for both windows (not "
            "accepted, also counted as rejected with reason=\"late\")",
            "window",
        )
        self.events_rejected = counter(
            "events_rejected_total", "Records dead-lettered, by topic and reason",
            "topic", "reason",
        )
        self.outputs_dropped = counter(
            "outputs_dropped_total",
            "Output entries left out because one alone exceeds a record's byte budget, by output "
            "topic (cannot happen for validated input: each one is also logged as an error)",
            "topic",
        )
        self.produce_refused = counter(
            "produce_refused_total",
            "Transactions the broker refused for good (record too large, authorization...), by "
            "topic and error; the worker exits right after, so the log and exit status 70 are the "
            "lasting signal",
            "topic", "error",
        )
        self.processing_errors = counter(
            "processing_errors_total",
            "Records that made a stage raise, by stage and exception type: each was dead-lettered "
            "with reason processing_error and its partial changes rolled back (or, with "
            "PROCESSING_ERRORS=fail, the worker exited)",
            "stage", "error",
        )
        self.events_replayed = counter(
            "events_replayed_total",
            "Records seen again after a crash or rebalance and skipped (already applied)",
            "topic",
        )
        self.events_reread = counter(
            "events_reread_total",
            "Records read twice because the worker sought back over an offset gap (skipped)",
            "topic",
        )
        self.profiles_records = counter(
            "profiles_records_total",
            "Records of user.profiles read into this worker's profiles table, by outcome: stored, "
            "deleted, skipped (invalid; dead-lettered once by the profile-rejects stage), failed "
            "(reading it raised; dead-lettered as processing_error by that stage)",
            "outcome",
        )
        self.profiles_lag = gauge(
            "profiles_lag_records",
            "Offsets of user.profiles this worker's profiles table has not read yet, per partition",
            "partition",
        )
        self.readmodel_records_skipped = counter(
            "readmodel_records_skipped_total",
            "Records of a tailed topic (segment partials, insights) that the worker's in-memory "
            "read model could not read and passed over",
            "topic",
        )
        self.property_events = counter(
            "property_events_total",
            "Records of property.events applied to their property's aggregate or skipped as "
            "duplicates, by outcome: applied, duplicate (rejections are events_rejected_total)",
            "outcome",
        )
        self.insights_emitted = counter(
            "insights_emitted_total", "Insights published, by type", "type",
        )
        self.consumer_lag = gauge(
            "consumer_lag_records",
            "Records behind the end of each owned input partition (a transactionally written topic "
            "keeps at least 1: its commit marker)",
            "topic", "partition",
        )
        self.latency_event_time = histogram(
            "processing_latency_event_time_seconds",
            "From the event time of a partition's newest accepted view to the commit of the batch "
            "that advanced it (one observation per partition and batch)",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
        )
        self.latency_receive = histogram(
            "processing_latency_receive_seconds",
            "From a batch's records received by the stage to the end of its processing, and its "
            "commit when one was due (one observation per batch)",
            buckets=SECONDS_BUCKETS,
        )
        self.commit_seconds = histogram(
            "commit_seconds",
            "One commit round of a stage: one transaction over every changed partition",
            "stage", buckets=SECONDS_BUCKETS,
        )
        self.table_keys = gauge(
            "table_keys",
            "Estimated keys per state store (RocksDB 'rocksdb.estimate-num-keys', summed over the "
            "partitions open on this worker)",
            "store",
        )
        self.rocksdb_memory = gauge(
            "rocksdb_memory_bytes",
            "Native memory of the RocksDB databases open on this worker, by kind: memtables and "
            "table readers summed over the databases, the block cache they share once",
            "kind",
        )
        self.owned_partitions = gauge(
            "owned_partitions", "Partitions open on this worker, per store", "store",
        )
        self.standby_lag = gauge(
            "standby_lag_records",
            "Committed changelog records the standby copy of a stage's partition kept on this "
            "worker has not applied yet (what a takeover here would restore)",
            "stage", "partition",
        )
        self.recovery_complete = gauge(
            "table_recovery_complete",
            "1 once this worker's tables are recovered: the profiles table has read user.profiles "
            "up to the end offsets seen at start-up, and faust has resumed the streams",
        )
        self.commits_stalled = gauge(
            "commits_stalled",
            "1 while a commit or a partition's opening has waited on the brokers longer than "
            "COMMIT_STALL_ALERT_SECONDS (brokers unreachable, or fewer replicas in sync than "
            "min.insync.replicas); nothing is dropped meanwhile",
        )
        self.commit_wait_seconds = gauge(
            "commit_wait_seconds",
            "How long the oldest commit or opening in flight has waited on the brokers (0: none)",
        )
        self.rounds_fenced = counter(
            "commit_rounds_fenced_total",
            "Commit rounds refused (the group moved on: a newer generation, or this worker no "
            "longer a member) or aborted by the transaction coordinator; their work is dropped and "
            "read again by the partitions' owners",
            "stage",
        )
        self.takeovers_fenced = counter(
            "takeover_transactions_fenced_total",
            "Transactions of a partition's previous owner that an opening here ended at once "
            "(InitProducerId) because they had outlived their timeout: a dead worker's last "
            "round, aborted instead of waiting for the transaction coordinator's clean-up",
            "stage",
        )
        self.commit_errors = counter(
            "commit_errors_total",
            "Failed attempts of a commit or a partition's opening, retried, by error",
            "error",
        )
        self.ready = gauge(
            "ready", "1 while GET /ready answers 200 (all state recovered, read models caught up)",
        )
        for insight_type in INSIGHT_TYPES:
            self.insights_emitted.labels(insight_type)
        for window in ("hour", "week"):
            self.events_late.labels(window)
        for outcome in ("stored", "deleted", "skipped"):
            self.profiles_records.labels(outcome)

    def declare_topics(self, views_topic: str, profiles_topic: str) -> None:
        """Create the known label sets at 0, so rates work from the first scrape."""
        for topic in (views_topic, profiles_topic):
            self.events_consumed.labels(topic)
            self.events_replayed.labels(topic)
            self.events_reread.labels(topic)
            for reason in REASONS:
                if reason != "late" or topic == views_topic:
                    self.events_rejected.labels(topic, reason)

    def record_outcomes(self, topic: str, outcomes: Tally[str]) -> None:
        """Fold a batch's per-event tallies into the counters (cheaper than per event)."""
        for outcome, n in outcomes.items():
            if outcome == "accepted":
                self.events_accepted.inc(n)
            elif outcome == "duplicate":
                self.events_duplicate.inc(n)
            elif outcome == "late_hourly":
                self.events_late.labels("hour").inc(n)
            elif outcome == "replayed":
                self.events_replayed.labels(topic).inc(n)
            elif outcome.startswith("rejected:"):
                reason = outcome.split(":", 1)[1]
                self.events_rejected.labels(topic, reason).inc(n)
                if reason == "late":
                    self.events_late.labels("week").inc(n)
            elif outcome.startswith("dropped:"):
                self.outputs_dropped.labels(outcome.split(":", 1)[1]).inc(n)
            elif outcome.startswith("property_"):
                self.property_events.labels(outcome.removeprefix("property_")).inc(n)
            elif outcome.startswith("insight:"):
                self.insights_emitted.labels(outcome.split(":", 1)[1]).inc(n)
        outcomes.clear()

    def observe_event_time(
        self, committed_at_ms: int, before: dict[int, int], after: dict[int, int]
    ) -> None:
        """One observation per partition whose stream time a committed batch advanced."""
        for partition, stream_time in after.items():
            previous = before.get(partition)  # None: opened during the batch, no baseline
            if previous is not None and stream_time > previous:
                self.latency_event_time.observe(max(committed_at_ms - stream_time, 0) / 1000)

    def set_standby_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """The copies' lag; the series of copies no longer kept here are dropped."""
        for labels in _label_sets(self.standby_lag):
            if (labels["stage"], int(labels["partition"])) not in lag:
                self.standby_lag.remove(labels["stage"], labels["partition"])
        for (stage, partition), records in lag.items():
            self.standby_lag.labels(stage, str(partition)).set(records)

    def prune_lag(self, owned: dict[str, set[int]]) -> None:
        """Drop the lag series of partitions this worker no longer owns (else they stay frozen)."""
        for labels in _label_sets(self.consumer_lag):
            topic, partition = labels["topic"], int(labels["partition"])
            if partition not in owned.get(topic, ()):
                self.consumer_lag.remove(labels["topic"], labels["partition"])

    # -- reading back, for the JSON summary -------------------------------------------
    def snapshot(self, views_topic: str) -> dict[str, float]:
        """Totals since this worker started, by what the dashboard shows."""
        return {
            "consumed": _total(self.events_consumed, topic=views_topic),
            "accepted": _total(self.events_accepted),
            "duplicate": _total(self.events_duplicate),
            "late": _total(self.events_late, window="hour"),
            "rejected": _total(self.events_rejected, topic=views_topic),
            "insights": _total(self.insights_emitted),
        }

    def rejected_by_reason(self, views_topic: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for sample in _samples(self.events_rejected):
            if sample.labels.get("topic") == views_topic and sample.value:
                out[sample.labels["reason"]] = sample.value
        return out

    def lag(self) -> list[dict]:
        return sorted(
            (
                {"topic": s.labels["topic"], "partition": int(s.labels["partition"]), "lag": int(s.value)}
                for s in _samples(self.consumer_lag)
            ),
            key=lambda item: (item["topic"], item["partition"]),
        )


class RateSampler:
    """Per-second rates of a few counters over the last minute, sampled on a timer."""

    def __init__(self, keep_seconds: int = 60) -> None:
        self._samples: deque[tuple[float, dict[str, float]]] = deque(maxlen=keep_seconds + 1)

    def sample(self, now: float, totals: dict[str, float]) -> None:
        self._samples.append((now, totals))

    def rate(self, key: str, over_seconds: float = 10.0) -> float | None:
        """Mean rate of ``key`` over about the last ``over_seconds``; None before two samples."""
        if len(self._samples) < 2:
            return None
        end_t, end = self._samples[-1]
        start_t, start = self._samples[-2]
        for t, values in reversed(self._samples):
            if end_t - t > over_seconds:
                break
            start_t, start = t, values
        if end_t <= start_t:
            return None
        return max(end[key] - start[key], 0.0) / (end_t - start_t)

    def series(self, key: str) -> list[float]:
        """Per-interval rates, oldest first (one per sample interval, about a second)."""
        out = []
        items = list(self._samples)
        for (t0, v0), (t1, v1) in zip(items, items[1:], strict=False):
            out.append(max(v1[key] - v0[key], 0.0) / (t1 - t0) if t1 > t0 else 0.0)
        return out


def _samples(metric) -> Iterable:  # noqa: ANN001
    for family in metric.collect():
        for sample in family.samples:
            if not sample.name.endswith(("_created", "_bucket", "_count", "_sum")):
                yield sample


def _label_sets(metric) -> list[dict[str, str]]:  # noqa: ANN001
    return [dict(s.labels) for s in _samples(metric)]


def _total(metric, **labels: str) -> float:  # noqa: ANN001
    return sum(
        s.value
        for s in _samples(metric)
        if all(s.labels.get(k) == v for k, v in labels.items())
    )
