"""Agents wire topics to tables: one module per kind of stream."""

from __future__ import annotations

import faust

from app.agents import lifecycle, stages
from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    # One agent per stage of the runtime's table (app.runtime.Runtime._specs).
    for spec, stage in zip(runtime.specs, runtime.stages, strict=True):
        stages.register(app, stage, spec.agent)
    lifecycle.register(app, runtime)
