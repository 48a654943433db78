"""HTTP: JSON views of table state, the dashboard, health, readiness and metrics."""

from __future__ import annotations

import faust

from app.runtime import Runtime
from app.settings import Settings
from app.web import api, auth, dashboard
from app.web.http import Peers


def application_options(settings: Settings, canonical_url: str) -> dict:
    """Options of the web server faust builds (``web_application_options``): the one
    middleware that guards every route, faust's built-in pages included."""
    guard = auth.Guard(settings.api_token, settings.peer_key, canonical_url)
    return {"middlewares": [auth.middleware(guard)]}


def register(app: faust.App, runtime: Runtime) -> None:
    peers = Peers(app, runtime.settings)
    # The dashboard first: its "/" must precede faust's own index page at the same path.
    dashboard.register(app, runtime, peers)
    api.register(app, runtime, peers)

    @app.on_before_shutdown.connect
    async def close_peer_session(sender: faust.App, **_: object) -> None:
        await peers.close()
