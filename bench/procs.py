"""Subprocesses under test (faust workers, the Quix peer): start, stop, peak RSS, CPU time.

Each runs in its own session, so stopping it signals its process group and nothing else; and
for the same reason nothing else stops it: a Ctrl-C or a SIGTERM meant for the benchmark does
not reach it. So every process started here is stopped when the benchmark's process ends,
however it ends but SIGKILL: SIGTERM and SIGHUP become a normal exit (``finally`` blocks run),
and an ``atexit`` hook stops whatever is still running (``stop_all``).
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAUST = str(BIN / "faust")
_CLK_TCK = os.sysconf("SC_CLK_TCK")


# Every Proc started and not yet stopped, by pid.
_RUNNING: dict[int, Proc] = {}
_GUARDED = False
PR_SET_PDEATHSIG = 1


def _exit_on_signal(signum: int, frame: object) -> None:
    """SIGTERM/SIGHUP as an exit: ``finally`` blocks, then ``atexit``, stop the children."""
    raise SystemExit(128 + signum)


def guard_children() -> None:
    """Once per process: stop every started Proc when this process ends (``stop_all`` at
    exit), and turn SIGTERM and SIGHUP, whose default kills the process without running
    anything, into an exit that does. SIGINT already is one (KeyboardInterrupt)."""
    global _GUARDED
    if _GUARDED:
        return
    _GUARDED = True
    atexit.register(stop_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(sig) == signal.SIG_DFL:
                signal.signal(sig, _exit_on_signal)


def die_with_parent() -> None:
    """Ask Linux for a SIGTERM when the parent process ends (``make bench``'s shell killed
    by a SIGTERM to make leaves this process running otherwise), and exit at once if it has
    already ended."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the signal handlers and atexit still stop the children
    if os.getppid() != parent:
        raise SystemExit(1)


def stop_all(timeout: float = 30) -> None:
    """SIGTERM to every running Proc's group at once, then wait for each (SIGKILL past
    ``timeout``)."""
    procs = list(_RUNNING.values())
    for proc in procs:
        if proc.alive:  # never a group whose leader is reaped: its id may be reused
            proc.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.stop(max(deadline - time.monotonic(), 1))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)
    rss_peak_bytes: int | None = None

    def start(self) -> Proc:
        guard_children()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env={**os.environ, **self.env, "PYTHONPATH": str(REPO)},  # this checkout's app
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        _RUNNING[self.proc.pid] = self
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss(self) -> int | None:
        """VmHWM of the process (peak resident set), in bytes; remembered for after it exits."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.rss_peak_bytes = int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return self.rss_peak_bytes

    def rss(self) -> int | None:
        """VmRSS of the process now (resident set), in bytes."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        return None

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the process so far."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLK_TCK
        except (OSError, ValueError, IndexError):
            return None

    def signal_group(self, sig: int) -> None:
        """``sig`` to its process group: the process and whatever it started."""
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to its process group, SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None:
                self.peak_rss()
                self.signal_group(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.signal_group(signal.SIGKILL)
                    self.proc.wait(10)
        finally:
            _RUNNING.pop(self.proc.pid, None)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def faust_worker(name: str, module: str, env: dict[str, str], data_dir: Path, log_dir: Path) -> Proc:
    port = free_port()
    full_env = {
        **env,
        "WORKER_WEB_PORT": str(port),
        "WORKER_DATA_DIR": str(data_dir / f"{name}-{port}"),
    }
    argv = [FAUST, "-A", module, "worker", "-l", "info"]
    return Proc(name, argv, full_env, log_dir / f"{name}-{port}.log", port=port)


async def get_json(url: str, timeout: float = 10) -> tuple[int, object]:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            body = await response.read()
            try:
                return response.status, orjson.loads(body)
            except orjson.JSONDecodeError:
                return response.status, body.decode(errors="replace")


async def rocksdb_memory(proc: Proc) -> dict[str, float] | None:
    """The worker's RocksDB memory gauge by kind (refreshed every 10 s); None when it has no
    HTTP port or does not answer."""
    if proc.port is None:
        return None
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(proc.url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as response:
                text = await response.text()
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return None
    return {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "property_analytics_rocksdb_memory_bytes"
        for sample in family.samples
    } or None


async def wait_http(proc: Proc, path: str, timeout: float) -> object:
    """Poll ``path`` until it answers 200; raise if the process dies or time runs out."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if not proc.alive:
            raise RuntimeError(f"{proc.name} exited; log {proc.log_path}:\n{proc.log_tail()}")
        try:
            status, last = await get_json(proc.url + path, timeout=5)
            if status == 200:
                return last
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            last = exc
        await asyncio.sleep(0.3)
    raise RuntimeError(f"{proc.name}: {path} not 200 after {timeout:.0f}s ({last!r})")
