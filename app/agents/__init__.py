"""Agents wire topics to tables: one module per kind of stream."""

from __future__ import annotations

import faust

from app.agents import lifecycle, stages
from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    # property.views -> hourly and weekly tables, insights, dead letters, views-by-user
    stages.register(app, runtime.views, "property_views")
    # views-by-user repartition topic -> exact unique users per (week, segment)
    stages.register(app, runtime.segments, "segment_users")
    # user.profiles -> its invalid records to user.profiles.dlq (every worker's profiles table
    # reads the topic itself: app.tables.profiles_reader, started in lifecycle)
    stages.register(app, runtime.profile_rejects, "user_profiles")
    # property.events -> the property aggregate (state, history), dead letters
    stages.register(app, runtime.properties, "property_events")
    lifecycle.register(app, runtime)
