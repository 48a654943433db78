"""Trend rules of CONTRACT §5, as pure functions over counts."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class TrendRules:
    spike_min_views: int = 20
    spike_ratio: float = 3.0
    spike_baseline_hours: int = 24
    trend_min_views: int = 50
    trend_ratio: float = 2.0


def spike_baseline(previous_hour_views: list[int], hours: int) -> float:
    """Mean hourly views over the ``hours`` preceding hours; missing hours count 0."""
    return sum(previous_hour_views) / hours


def is_spike(views: int, baseline: float, rules: TrendRules) -> bool:
    """``views >= min`` and ``views >= ratio x baseline``."""
    return views >= rules.spike_min_views and views >= rules.spike_ratio * baseline


def is_segment_trend(views: int, previous_views: int, rules: TrendRules) -> bool:
    """This week's segment views of a property ``>= min`` and ``>= ratio x`` last week's."""
    return views >= rules.trend_min_views and views >= rules.trend_ratio * previous_views


def ratio(views: int, baseline: float) -> float | None:
    """``views / baseline`` rounded to 2 places; None when the baseline is 0."""
    return round(views / baseline, 2) if baseline else None
