"""The faust work-arounds in ``app.engine.faust_fixes``: faust's own behaviour first, so the test
fails (and the work-around can go) once faust changes it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from aiokafka import TopicPartition
from faust.types import TP

from app.engine.faust_fixes import leave_to_stages, request_rejoin
from app.main import create_app
from app.settings import Settings


async def test_faust_fetches_every_assigned_partition_and_the_fix_leaves_the_stage_topics_out(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=tmp_path, app_id="fixes-test"))
    consumer = app.consumer
    stage, other = TP("stage", 0), TP("other", 0)
    # faust: every assigned partition of every subscribed topic is fetched for its agent
    assert consumer._set_active_tps({stage, other}) == {stage, other}

    asked: list = []

    async def fetch(active_partitions, timeout):  # noqa: ANN001, ANN202
        asked.append(active_partitions)
        return {}

    consumer._getmany = fetch
    thread = consumer._thread
    paused: list = []
    listened: list = []
    thread._ensure_consumer = lambda: SimpleNamespace(pause=lambda *tps: paused.extend(tps))

    async def on_assigned(assigned, generation) -> None:  # noqa: ANN001
        listened.append((assigned, generation))

    thread.on_partitions_assigned = on_assigned

    leave_to_stages(app, {"stage"})

    assert await consumer._getmany({stage, other}, 0.01) == {}
    assert asked == [{other}]
    assert await consumer._getmany({TP("stage", 1)}, 0.01) == {}
    assert asked == [{other}]  # nothing left to ask for: not "every partition"
    await consumer._getmany(None, 0.01)  # faust's client-only mode: passed through
    assert asked == [{other}, None]

    await thread.on_partitions_assigned({stage, other}, 3)
    assert paused == [TopicPartition("stage", 0)]  # no fetch is sent for it
    assert listened == [({stage, other}, 3)]  # faust's listener still runs, after the pause


def test_faust_logs_an_error_for_a_partition_it_never_fetches_and_the_fix_checks_only_its_own(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(data_dir=tmp_path, app_id="fixes-test"))
    consumer = app.consumer
    thread = consumer._thread
    stage, other = TP("stage", 0), TP("other", 0)
    # faust: a partition assigned, never fetched (paused), is an error once the worker has
    # run for stream_processing_timeout; its livelock check repeats it every few seconds
    state = SimpleNamespace(timestamp=None, highwater=None, position=None)
    assignment = SimpleNamespace(active=True, state_value=lambda tp: state)
    thread._consumer = SimpleNamespace(
        _fetcher=SimpleNamespace(_subscriptions=SimpleNamespace(subscription=SimpleNamespace(assignment=assignment)))
    )
    thread.time_started = 0.0
    errors: list = []
    thread.log = SimpleNamespace(error=lambda msg, *args: errors.append(msg % args))
    consumer.verify_event_path(thread.tp_fetch_request_timeout_secs + 1, stage)
    assert errors and "has not sent fetch request" in errors[0]

    checked: list = []
    thread.verify_event_path = lambda now, tp: checked.append(tp)
    leave_to_stages(app, {"stage"})
    consumer.verify_event_path(1000.0, stage)
    consumer.verify_event_path(1000.0, other)
    assert checked == [other]  # faust's own partitions are still checked


def test_a_rejoin_request_goes_to_the_consumer_threads_loop(tmp_path: Path) -> None:
    """What ``request_rejoin`` reaches into: faust's consumer thread, its own event loop, and
    aiokafka's group coordinator with its ``request_rejoin``."""
    from aiokafka.consumer.group_coordinator import GroupCoordinator


    app = create_app(Settings(data_dir=tmp_path, app_id="fixes-test"))
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
