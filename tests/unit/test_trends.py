"""Trend rules of CONTRACT §5 at their exact boundaries."""

from __future__ import annotations

import pytest

from app.trends import TrendRules, is_segment_trend, is_spike, ratio, spike_baseline

RULES = TrendRules()


def test_default_rules_are_the_contract_thresholds():
    assert RULES == TrendRules(
        spike_min_views=20,
        spike_ratio=3.0,
        spike_baseline_hours=24,
        trend_min_views=50,
        trend_ratio=2.0,
    )


def test_baseline_is_the_mean_over_all_hours_missing_ones_count_zero():
    assert spike_baseline([7] * 24, 24) == 7.0
    assert spike_baseline([24], 24) == 1.0  # 23 hours without views
    assert spike_baseline([], 24) == 0.0
    assert spike_baseline([0] * 24, 24) == 0.0
    assert spike_baseline([300, 0, 0], 24) == 12.5


@pytest.mark.parametrize(
    ("views", "baseline", "expected"),
    [
        (20, 0.0, True),  # minimum views, no history
        (19, 0.0, False),  # below the minimum, whatever the ratio
        (19, 1.0, False),
        (20, 6.0, True),  # 3 x 6 = 18 <= 20
        (20, 6.666666666666667, True),  # baseline 160/24: 3x is exactly 20
        (21, 7.0, True),  # exactly 3 x baseline
        (20, 7.0, False),  # >= min but < 3 x baseline
        (30, 10.0, True),
        (29, 10.0, False),
        (240, 12.5, True),
    ],
)
def test_spike_boundaries(views, baseline, expected):
    assert is_spike(views, baseline, RULES) is expected


def test_spike_thresholds_are_settings():
    rules = TrendRules(spike_min_views=5, spike_ratio=2.0)
    assert is_spike(5, 2.5, rules) is True
    assert is_spike(4, 0.0, rules) is False
    assert is_spike(5, 2.6, rules) is False


@pytest.mark.parametrize(
    ("views", "baseline", "expected"),
    [
        (21, 7.0, 3.0),
        (240, 12.5, 19.2),
        (10, 3.0, 3.33),
        (20, 6.0, 3.33),
        (2, 3.0, 0.67),
        (5, 0.0, None),
    ],
)
def test_ratio_rounded_to_two_places_none_on_zero_baseline(views, baseline, expected):
    assert ratio(views, baseline) == expected


@pytest.mark.parametrize(
    ("views", "previous", "expected"),
    [
        (50, 0, True),  # new this week: no previous views
        (49, 0, False),
        (50, 25, True),  # exactly 2 x
        (59, 30, False),
        (60, 30, True),
        (100, 51, False),
        (49, 10, False),
    ],
)
def test_segment_trend_boundaries(views, previous, expected):
    assert is_segment_trend(views, previous, RULES) is expected


def test_segment_trend_with_previous_zero_has_no_ratio():
    assert is_segment_trend(50, 0, RULES) is True
    assert ratio(50, 0) is None


def test_segment_trend_thresholds_are_settings():
    rules = TrendRules(trend_min_views=3, trend_ratio=1.5)
    assert is_segment_trend(3, 2, rules) is True
    assert is_segment_trend(3, 3, rules) is False
    assert is_segment_trend(2, 0, rules) is False
