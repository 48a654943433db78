"""SIGKILL a worker mid-stream, at the moment one of its transactions is open, and start it
again: what the crash tests (test_restart, test_properties) do to prove exactness."""

from __future__ import annotations

import asyncio
import shutil
import time
from typing import NamedTuple

from tests.support.topics import TransactionProbe, committed_views
from tests.support.workers import Worker


class Kill(NamedTuple):
    committed: int  # records of the topic the group had committed when the kill came
    inside: bool  # whether a transaction on the changelog was open at the SIGKILL


async def kill_mid_stream(
    bootstrap: str, worker: Worker, topic: str, total: int, share: float, changelog: str,
    wipe: bool, timeout: float = 120,
) -> Kill:
    """Once ``share`` of the ``total`` records of ``topic`` are committed, SIGKILL the worker
    with a transaction on ``changelog`` open if one comes within 15 s; start it again, on a
    wiped data dir if ``wipe``."""
    started = time.monotonic()
    while True:
        done, _ = await committed_views(bootstrap, worker.env["APP_ID"], topic)
        if done >= total * share:
            break
        assert worker.alive, f"worker died; see {worker.log_path}"
        assert time.monotonic() - started < timeout, f"only {done}/{total} of {topic} committed"
        await asyncio.sleep(0.05)
    async with TransactionProbe(bootstrap, changelog) as probe:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and not await probe.open():
            pass
        worker.kill()
        inside = await probe.open()
    if wipe:
        shutil.rmtree(worker.data_dir)
    worker.start()
    return Kill(done, inside)
