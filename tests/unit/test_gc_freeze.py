"""The worker's first start moves what it made so far out of the garbage collector's way
(``AnalyticsApp.on_first_start``): full collections walk the objects of the work only."""

from __future__ import annotations

import gc

from app.main import create_app
from app.settings import Settings


async def test_the_first_start_freezes_the_objects_made_before_it(tmp_path) -> None:
    app = create_app(Settings(app_id="gc-freeze", worker_data_dir=tmp_path / "data"))
    app.client_only = True  # no broker: the checks and topic creation are left out
    gc.unfreeze()
    try:
        await app.on_first_start()
        assert gc.get_freeze_count() > 10_000  # the modules, the app, its agents and views
    finally:
        gc.unfreeze()
