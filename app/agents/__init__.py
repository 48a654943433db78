"""Agents wire topics to tables: one module per kind of stream."""

from __future__ import annotations

import faust

from app.agents import housekeeping, profiles, stages
from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    profiles.register(app, runtime)
    # property.views -> hourly and weekly tables, insights, dead letters, views-by-user
    stages.register(app, runtime.settings, runtime.views, "property_views")
    # views-by-user repartition topic -> exact unique users per (week, segment)
    stages.register(app, runtime.settings, runtime.segments, "segment_users")
    housekeeping.register(app, runtime)
