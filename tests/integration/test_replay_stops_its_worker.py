"""``replay`` starts one shadow worker, in a session of its own: whatever stops the command
(SIGINT, SIGTERM, SIGHUP: a closed terminal) stops that worker too. Before, a SIGHUP ended the
command at once and left the worker running, consuming as the shadow."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.commands import ReplayProcess, run
from tests.support.processes import in_session
from tests.support.workers import free_port, isolated_env

pytestmark = pytest.mark.timeout(400)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda s: s.name)
async def test_stopping_replay_stops_its_worker(kafka_bootstrap, tmp_path, sig):
    env = isolated_env(kafka_bootstrap, TOPIC_PARTITIONS="2")
    made = run(env, "create-topics")
    assert made.returncode == 0, made.stderr[-2000:]
    from_iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    replay = ReplayProcess(env, "stop", from_iso, free_port(), tmp_path / "data",
                           tmp_path / "replay.log")
    worker = None
    try:
        await replay.wait_for("worker pid", 120)
        worker = int(re.search(r"worker pid (\d+)", replay.output()).group(1))
        assert in_session(worker)
        replay.proc.send_signal(sig)  # to the command only
        replay.proc.wait(90)
        deadline = time.monotonic() + 60
        while in_session(worker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not in_session(worker), f"worker {worker} left running after {sig.name}"
    finally:
        if worker is not None:
            for pid in in_session(worker):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if replay.proc.poll() is None:
            replay.proc.kill()
            replay.proc.wait()
        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            tag = env["APP_ID"].removeprefix("pa-test-")
            await admin.delete_topics([t for t in await admin.list_topics() if tag in t])
        finally:
            await admin.close()
