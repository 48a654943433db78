"""The app's commands as an operator runs them (``faust -A app.main <command>``), and input
records with the timestamps a live stream gives them, for the replay and DR tests."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer

from tests.support.workers import FAUST, REPO

FUTURE_TOLERANCE_MS = 5 * 60_000


def command_env(env: dict[str, str]) -> dict[str, str]:
    """The test's settings over this process's environment; this checkout's code."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, **env, "PYTHONPATH": path}


def run(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([FAUST, "-A", "app.main", *args], cwd=REPO, env=command_env(env),
                          capture_output=True, text=True, timeout=timeout)


class ReplayProcess:
    """``faust -A app.main replay``, left running: it starts one shadow worker, its child."""

    def __init__(self, env: dict[str, str], name: str, from_iso: str, port: int,
                 data_dir: Path, log_path: Path, *args: str) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [FAUST, "-A", "app.main", "replay", "--shadow", name, "--from", from_iso,
             "--web-port", str(port), "--data-dir", str(data_dir), "--progress-seconds", "1",
             *args],
            cwd=REPO, env=command_env(env), stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_for(self, text: str, timeout: float) -> float:
        """Seconds until ``text`` is in the output."""
        started = time.monotonic()
        while text not in self.output():
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"replay exited {self.proc.returncode}:\n{self.output()[-3000:]}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"no {text!r} after {timeout}s:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.5)
        return time.monotonic() - started

    def stop(self) -> int | None:
        """SIGTERM to the command only: it stops its worker and waits for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(30)
        pid = re.search(r"worker pid (\d+)", self.output())
        if pid and Path(f"/proc/{pid.group(1)}").exists():  # never leave the worker running
            os.killpg(int(pid.group(1)), signal.SIGKILL)
            raise AssertionError(f"replay left its worker {pid.group(1)} running")
        return self.proc.returncode


def view_time(value: bytes | None, now_ms: int) -> int | None:
    """A view's own time, for a record the product would take as a view (else None)."""
    try:
        moment = datetime.fromisoformat(json.loads(value)["timestamp"])
    except (TypeError, ValueError, KeyError, AttributeError):
        return None
    if moment.tzinfo is None:
        return None
    ts = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() * 1000)
    return ts if ts <= now_ms + FUTURE_TOLERANCE_MS else None


def timestamped(records: list[tuple], now_ms: int,
                extra: list[tuple[int, bytes, bytes]] = ()) -> list[tuple[bytes, bytes, int]]:
    """(key, value, record timestamp) in produce order: ``records`` ((key, value, ...) in
    produce order) with ``extra`` ((time, key, value)) merged in by time, each record stamped
    with the newest view time seen so far, as a stream of live arrivals would be (a late view
    arrives after newer ones: its record timestamp is ahead of its own time, never behind)."""
    pending = sorted(extra)
    merged: list[tuple[bytes, bytes]] = []
    for key, value, *_ in records:
        ts = view_time(value, now_ms)
        while pending and ts is not None and pending[0][0] <= ts:
            _, k, v = pending.pop(0)
            merged.append((k, v))
        merged.append((key, value))
    merged += [(k, v) for _, k, v in pending]
    out, newest = [], 0
    for key, value in merged:
        ts = view_time(value, now_ms)
        if ts is not None:
            newest = max(newest, ts)
        out.append((key, value, newest))
    return out


async def produce_at(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int]]
                     ) -> list[tuple[int, int]]:
    """Send (key, value, timestamp) records in order; their (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                linger_ms=5, max_request_size=2 * 1024 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key, timestamp_ms=ts)
                   for key, value, ts in records]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [(md.partition, md.offset) for md in metadata]
