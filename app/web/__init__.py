"""HTTP: JSON views of table state, the dashboard, health, readiness and metrics."""

from __future__ import annotations

import faust

from app.runtime import Runtime
from app.web import api


def register(app: faust.App, runtime: Runtime) -> None:
    api.register(app, runtime)
