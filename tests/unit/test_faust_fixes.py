"""The faust work-arounds in ``app.engine.faust_fixes``: each shows faust's own behaviour first,
so the test fails (and the work-around can go) once faust changes it."""

from __future__ import annotations

from pathlib import Path

from faust.types import TP

from app.engine.faust_fixes import tune_worker_consumer, untrack_read_offsets
from app.main import create_app
from app.settings import Settings


def _app(tmp_path: Path):  # noqa: ANN202
    return create_app(Settings(data_dir=tmp_path, app_id="fixes-test"))


async def test_faust_worker_consumer_reads_uncommitted_waits_long_and_the_fix_changes_both(
    tmp_path: Path,
) -> None:
    app = _app(tmp_path)
    thread = app.consumer._thread
    plain = thread._create_worker_consumer(app.transport)
    assert plain._isolation_level == "read_uncommitted"  # faust without exactly_once
    assert plain._fetch_max_wait_ms == 1500  # faust's constant

    tune_worker_consumer(app, fetch_max_wait_ms=100)
    fixed = thread._create_worker_consumer(app.transport)
    assert fixed._isolation_level == "read_committed"
    assert fixed._fetch_max_wait_ms == 100
    assert fixed._group_id == plain._group_id == "fixes-test"  # otherwise unchanged


def test_read_offsets_are_not_tracked_for_stage_topics(tmp_path: Path) -> None:
    app = _app(tmp_path)
    untrack_read_offsets(app, {"stage"})
    offsets = app.consumer._read_offset
    stage, other = TP("stage", 0), TP("other", 0)

    offsets[stage] = 41
    offsets.update({other: 7, TP("stage", 1): 3})

    assert offsets[stage] is None  # faust then drops nothing of it after a seek
    assert offsets[TP("stage", 1)] is None
    assert offsets[other] == 7
    assert offsets[TP("other", 1)] is None  # faust's default for an unseen partition


def test_a_rejoin_request_goes_to_the_consumer_threads_loop(tmp_path: Path) -> None:
    """What ``request_rejoin`` reaches into: faust's consumer thread, its own event loop, and
    aiokafka's group coordinator with its ``request_rejoin``."""
    from aiokafka.consumer.group_coordinator import GroupCoordinator

    from app.engine.faust_fixes import request_rejoin

    app = _app(tmp_path)
    thread = app.consumer._thread
    assert request_rejoin(app) is False  # no consumer before the worker starts
    assert callable(GroupCoordinator.request_rejoin)

    calls: list[str] = []
    coordinator = type("Coordinator", (), {"request_rejoin": lambda self: calls.append("rejoin")})()
    thread._consumer = type("Consumer", (), {"_coordinator": coordinator})()
    scheduled: list = []
    thread.thread_loop.call_soon_threadsafe = scheduled.append  # run by the thread's loop, later
    assert request_rejoin(app) is True
    assert calls == [] and len(scheduled) == 1
    scheduled[0]()
    assert calls == ["rejoin"]
