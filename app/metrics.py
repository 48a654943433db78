"""Prometheus metrics of CONTRACT §6 (names follow Prometheus conventions)."""

from __future__ import annotations

from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_consumed = Counter(
            "events_consumed_total", "Input records consumed", ["topic"], registry=r
        )
        self.events_accepted = Counter(
            "events_accepted_total", "Views accepted into the windows", registry=r
        )
        self.events_duplicate = Counter(
            "events_duplicate_total", "Views skipped as duplicates of an accepted eventId", registry=r
        )
        self.events_late_hourly = Counter(
            "events_late_hourly_total",
            "Accepted views left out of their hourly window (late for the hour, not the week)",
            registry=r,
        )
        self.events_rejected = Counter(
            "events_rejected_total", "Records dead-lettered, by reason", ["topic", "reason"], registry=r
        )
        self.events_replayed = Counter(
            "events_replayed_total",
            "Records seen again after a crash or rebalance and skipped (already applied)",
            ["topic"],
            registry=r,
        )
        self.insights_emitted = Counter(
            "insights_emitted_total", "Insights published, by type", ["type"], registry=r
        )
        self.consumer_lag = Gauge(
            "consumer_lag", "Records behind the end of each owned input partition",
            ["topic", "partition"], registry=r,
        )
        self.latency_event_time = Histogram(
            "processing_latency_event_time_seconds",
            "From a view's event time to its commit",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=r,
        )
        self.latency_receive = Histogram(
            "processing_latency_receive_seconds",
            "From a batch's first record received to its commit",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.table_keys = Gauge(
            "table_keys", "Estimated keys per state store", ["store"], registry=r
        )
        self.owned_partitions = Gauge(
            "owned_partitions", "Partitions open on this worker", ["store"], registry=r
        )
        self.recovery_complete = Gauge(
            "recovery_complete", "1 once table recovery is complete", registry=r
        )

    def record_outcomes(self, topic: str, outcomes: Tally[str]) -> None:
        """Fold a batch's per-event tallies into the counters (cheaper than per event)."""
        for outcome, n in outcomes.items():
            if outcome == "accepted":
                self.events_accepted.inc(n)
            elif outcome == "duplicate":
                self.events_duplicate.inc(n)
            elif outcome == "late_hourly":
                self.events_late_hourly.inc(n)
            elif outcome == "replayed":
                self.events_replayed.labels(topic).inc(n)
            elif outcome.startswith("rejected:"):
                self.events_rejected.labels(topic, outcome.split(":", 1)[1]).inc(n)
            elif outcome.startswith("insight:"):
                self.insights_emitted.labels(outcome.split(":", 1)[1]).inc(n)
        outcomes.clear()
