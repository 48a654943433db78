"""The app's commands besides ``worker``: ``faust -A app.main <command> --help``.

One module per command; ``register`` adds them all to the app.
"""

from __future__ import annotations

import faust

from app.settings import Settings


def register(app: faust.App, settings: Settings) -> None:
    from app.commands import (
        acls,
        apply_topics,
        diff,
        export_topics,
        promote,
        rebuild_properties,
        redrive,
        replay,
    )

    for command in (
        replay, diff, promote, export_topics, apply_topics, rebuild_properties, acls, redrive
    ):
        command.register(app, settings)
