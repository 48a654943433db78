"""Real worker processes for integration and fault tests: start, kill, pause, wait.

Each test gets its own app id and topic names (``isolated_env``), so tests never share
state on the broker; workers are ``faust -A app.main worker`` subprocesses, as users run them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiokafka import TopicPartition
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from app.engine.clients import partitions_of, stop_consumer
from app.engine.committed import records_between

REPO = Path(__file__).resolve().parents[2]
FAUST = str(Path(sys.executable).with_name("faust"))


def without_position(body: object) -> object:
    """An answer without its ``position``: what the oracle's answers are compared with."""
    if isinstance(body, dict) and "position" in body:
        return {k: v for k, v in body.items() if k != "position"}
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def isolated_env(bootstrap: str, **overrides: str) -> dict[str, str]:
    """Environment for workers of one test: unique app id and topics, fast batches."""
    tag = uuid.uuid4().hex[:8]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "APP_ID": f"pa-test-{tag}",
        "VIEWS_TOPIC": f"views-{tag}",
        "PROFILES_TOPIC": f"profiles-{tag}",
        "PROPERTY_EVENTS_TOPIC": f"property-events-{tag}",
        "INSIGHTS_TOPIC": f"insights-{tag}",
        "TOPIC_PARTITIONS": "6",
        "PARTIALS_PUBLISH_SECONDS": "0.2",
        "COMMIT_INTERVAL_SECONDS": "0.5",
    }
    env.update(overrides)
    return env


@dataclass
class Worker:
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    data_dir: Path | None = None
    log_dir: Path = REPO / "tests" / "artifacts" / "logs"
    proc: subprocess.Popen | None = None
    app_module: str = "app.main"  # tests.support.failing_app injects faults

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.env['APP_ID']}-worker-{self.port}.log"

    def start(self) -> Worker:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.data_dir is None:
            self.data_dir = REPO / "tests" / "artifacts" / "data" / f"{self.env['APP_ID']}-{self.port}"
        env = {
            **os.environ,
            **self.env,
            "WORKER_WEB_PORT": str(self.port),
            "WORKER_DATA_DIR": str(self.data_dir),
            # The faust script's sys.path starts at the venv's bin/, where an editable install
            # maps `app` to the checkout that created the venv: run this checkout's code.
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
            ),
        }
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [FAUST, "-A", self.app_module, "worker", "-l", "info"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush."""
        if self.proc and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM and wait for a graceful exit; SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def get(self, path: str, position: bool = False, **kwargs) -> tuple[int, object]:  # noqa: ANN003
        """``(status, JSON body)``; the body's ``position`` left out unless ``position``."""
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=15), **kwargs) as r:
                body = await r.read()
                try:
                    import orjson

                    decoded = orjson.loads(body)
                except ValueError:
                    return r.status, body.decode(errors="replace")
                return r.status, decoded if position else without_position(decoded)

    async def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            if not self.alive:
                raise AssertionError(f"worker on {self.port} exited; see {self.log_path}")
            try:
                status, last = await self.get("/ready")
                if status == 200:
                    return
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                last = exc
            await asyncio.sleep(0.5)
        raise AssertionError(f"worker on {self.port} not ready after {timeout}s: {last!r}; see {self.log_path}")


async def committed_lag(bootstrap: str, group: str, topics: list[str]) -> int:
    """Records of ``topics`` after group ``group``'s committed offsets.

    Counts real records (read_committed), not offsets: transaction markers take offsets too,
    so ``end - committed`` never reaches 0 on a transactionally written topic.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in await partitions_of(consumer, t)]
        ends = await consumer.end_offsets(tps)
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await stop_consumer(consumer)
        await admin.close()
    starts = {tp: meta.offset for tp, meta in committed.items()}
    return await records_between({"bootstrap_servers": bootstrap}, starts, ends)


async def wait_views_committed(
    bootstrap: str | dict, env: dict[str, str], workers: list[Worker], timeout: float = 300,
    poll: float = 0.5,
) -> float:
    """Wait until the group has committed every record of the views topic, the workers
    staying up (the topic is not written transactionally: committed == end offsets exactly
    then); returns seconds. ``bootstrap``: an address, or a secured cluster's client
    arguments (``tests.support.topics.Connection``)."""
    from tests.support.topics import committed_views

    started = time.monotonic()
    while True:
        done, total = await committed_views(bootstrap, env["APP_ID"], env["VIEWS_TOPIC"])
        if done >= total:
            return time.monotonic() - started
        for worker in workers:
            assert worker.alive, f"a worker died; see {worker.log_path}"
        assert time.monotonic() - started < timeout, f"only {done}/{total} views processed"
        await asyncio.sleep(poll)


async def wait_caught_up(
    bootstrap: str, env: dict[str, str], timeout: float = 180, settle: float = 1.0
) -> float:
    """Wait until the group has committed every views, views-by-user and property-events
    record; returns seconds."""
    group = env["APP_ID"]
    topics = [env["VIEWS_TOPIC"], f"{group}-views-by-user-repartition"]
    if "PROPERTY_EVENTS_TOPIC" in env:
        topics.append(env["PROPERTY_EVENTS_TOPIC"])
    started = time.monotonic()
    lag = None
    while time.monotonic() - started < timeout:
        lag = await committed_lag(bootstrap, group, topics)
        if lag == 0:
            await asyncio.sleep(settle)  # throttled segment shares are published on a timer
            if await committed_lag(bootstrap, group, topics) == 0:
                return time.monotonic() - started
        await asyncio.sleep(0.5)
    raise AssertionError(f"group {group} still {lag} records behind after {timeout}s")
