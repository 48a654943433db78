"""The views stage's memo of spike baselines stays bounded however many properties and hours
pass, and never changes an answer: the spikes equal the rule applied to the final counts."""

from __future__ import annotations

import orjson
import pytest

from app.settings import Settings
from app.stages import views
from app.stages.views import ViewsConfig
from app.trends import TrendRules, is_spike, spike_baseline
from app.windows import HOUR_MS, iso_ms, parse_iso

from .test_views_processor import INSIGHTS, make  # noqa: F401  (the fixture)

H0 = parse_iso("2026-11-16T00:00:00Z")
HOURS = 48
STEADY = 5  # properties viewed every hour, by a pattern that makes some hours spikes
FRESH = 30  # new properties each hour, each viewed in that hour only
RULES = TrendRules(spike_min_views=2)


def hourly_views(hour: int) -> dict[str, int]:
    """propertyId -> views in hour ``hour`` (0-based) of the workload."""
    out = {f"steady-{j}": (hour * 7 + j * 3) % 9 for j in range(STEADY)}
    out.update({f"fresh-{hour}-{k}": 2 + k % 3 for k in range(FRESH)})
    return {prop: n for prop, n in out.items() if n}


def expected_spikes() -> set[str]:
    """The spike rule over the final counts (views come in time order: every baseline hour
    is final when its hour is counted, and the rule is monotone in the hour's views)."""
    counts = {(prop, h): n for h in range(HOURS) for prop, n in hourly_views(h).items()}
    out = set()
    for (prop, h), n in counts.items():
        base = spike_baseline([counts.get((prop, h - k), 0) for k in range(1, 25)], 24)
        if is_spike(n, base, RULES):
            out.add(f"property_hourly_spike:{prop}:{iso_ms(H0 + h * HOUR_MS)}")
    return out


def run(make, sizes: list[int]) -> set[str]:  # noqa: F811
    """Feed the workload hour by hour, committing after each; ``sizes`` gets the memo's size
    after each commit."""
    d = make(cfg=ViewsConfig.from_settings(Settings(spike_min_views=2)))
    for h in range(HOURS):
        hour = H0 + h * HOUR_MS
        for prop, n in sorted(hourly_views(h).items()):
            for i in range(n):
                d.view(f"{prop}-{h}-{i}", hour + 60_000 + i * 60_000, prop=prop, user=f"u{i}")
        d.commit()
        sizes.append(len(d.proc._baselines))
    return {
        orjson.loads(r.value)["insightId"]
        for r in d.published
        if r.topic == INSIGHTS and b"property_hourly_spike" in r.value
    }


def test_the_memo_keeps_only_the_open_hours_and_the_spikes_are_unchanged(make):  # noqa: F811
    sizes: list[int] = []
    spikes = run(make, sizes)
    expected = expected_spikes()
    assert spikes == expected
    assert len(expected) > HOURS * FRESH  # every fresh property's hour, and steady ones
    distinct = STEADY + HOURS * FRESH
    # After each commit only the hours a view can still count in are memoised (stream time
    # is a few minutes into hour h: h and h-1, within its 15 min of grace), not every
    # property seen: 65 entries at most here, against 1,445 properties.
    assert max(sizes) == STEADY + 2 * FRESH < distinct
    assert sizes[-1] > 0


def test_the_memo_is_emptied_when_full_and_the_spikes_are_unchanged(make, monkeypatch):  # noqa: F811
    monkeypatch.setattr(views, "BASELINES_CACHED", 7)
    sizes: list[int] = []
    assert run(make, sizes) == expected_spikes()
    assert 0 < max(sizes) <= 7


@pytest.mark.parametrize("cached", [1, 2])
def test_a_tiny_memo_gives_the_same_spikes(make, monkeypatch, cached):  # noqa: F811
    monkeypatch.setattr(views, "BASELINES_CACHED", cached)
    assert run(make, []) == expected_spikes()
