"""Agents wire topics to tables: one module per stream."""

from __future__ import annotations

import faust

from app.agents import profiles, segments, views, housekeeping
from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    profiles.register(app, runtime)
    views.register(app, runtime)
    segments.register(app, runtime)
    housekeeping.register(app, runtime)
