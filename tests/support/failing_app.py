"""The worker with a fault injected for chosen records: ``faust -A tests.support.failing_app
worker`` runs ``app.main`` unchanged, except that a valid view whose eventId starts with
``poison-`` raises once the views stage has applied it (counted it in its hour, its week and
its dedupe store, queued its outputs), as a bug met by unforeseen input would. Only the
processing exception path can keep such a view out of every answer: its partial changes
must be rolled back and the record dead-lettered (``app.engine.runner``).
"""

from __future__ import annotations

from app.stages import views

POISON_PREFIX = "poison-"

_apply_view = views.ViewsProcessor._process_valid  # noqa: SLF001


def _failing(self, offset, key, value, event, now_ms) -> None:  # noqa: ANN001
    _apply_view(self, offset, key, value, event, now_ms)
    if event.event_id.startswith(POISON_PREFIX):
        raise LookupError(f"injected failure for {event.event_id}")


views.ViewsProcessor._process_valid = _failing  # noqa: SLF001

from app.main import app  # noqa: E402, F401  (faust -A finds it here)
