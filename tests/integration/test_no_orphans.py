"""A command that starts processes stops them when it is stopped: SIGINT or SIGTERM to the
benchmark (``python -m bench``, its smallest run that starts a faust worker) leaves no process
of it behind. Before, SIGTERM left the worker running and consuming from the broker: the
benchmark starts each worker in a session of its own, so nothing else reaches it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.commands import command_env

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
pytestmark = pytest.mark.timeout(300)

# The benchmark's smallest path that starts a worker: 100 views, then stage b (faust's no-op
# agent, a real faust worker on the broker), every other stage left out.
SMALLEST = ["--views", "100", "--users", "20", "--properties", "10", "--partitions", "2",
            "--skip", "ceiling", "--skip", "pipeline", "--skip", "quix", "--skip", "pipeline2",
            "--skip", "latency", "--skip", "profile"]


def processes() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, session id, command line) of every process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":  # exited, not yet reaped
            continue
        found[int(entry.name)] = (int(fields[1]), int(fields[3]), cmdline)
    return found


def descendants(root: int, sessions: set[int]) -> dict[int, str]:
    """Processes under ``root``, or in one of ``sessions`` (the workers' own sessions)."""
    table = processes()
    out: dict[int, str] = {}
    frontier = {root}
    while frontier:
        frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier} - out.keys()
        out.update({pid: table[pid][2] for pid in frontier})
    out.update({pid: cmd for pid, (_, sid, cmd) in table.items() if sid in sessions})
    return out


def wait_for_worker(bench: subprocess.Popen, timeout: float) -> int:
    """The pid of the faust worker the benchmark started, once it runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert bench.poll() is None, f"the benchmark exited {bench.returncode} first"
        for pid, cmd in descendants(bench.pid, set()).items():
            if "bench.floor_app" in cmd and " worker" in cmd:
                return pid
        time.sleep(0.2)
    raise AssertionError(f"no worker started within {timeout:.0f} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_stopping_the_benchmark_stops_its_worker(kafka_bootstrap, tmp_path, sig):
    # A benchmark that finished writes its results into the repository: put them back.
    results = {p: p.read_bytes() for p in RESULTS.glob("*.json")}
    log = tmp_path / "bench.log"
    with log.open("wb") as out:
        bench = subprocess.Popen(
            [sys.executable, "-m", "bench", *SMALLEST], cwd=REPO,
            env=command_env({"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    worker = None
    try:
        worker = wait_for_worker(bench, 180)
        time.sleep(0.5)  # the worker is starting: it takes seconds to import faust and join
        assert worker in descendants(bench.pid, set())
        bench.send_signal(sig)  # to the benchmark's process only, not its group
        started = time.monotonic()
        bench.wait(90)
        left: dict[int, str] = {}
        while time.monotonic() - started < 60:
            left = descendants(bench.pid, {worker})
            if not left:
                break
            time.sleep(0.2)
        assert not left, f"left running after {sig.name}: {left}\n{log.read_text()[-3000:]}"
        assert bench.returncode != 0  # stopped, not finished
    finally:
        for pid in descendants(bench.pid, {worker} if worker else set()):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        if bench.poll() is None:
            bench.kill()
            bench.wait()
        for path in RESULTS.glob("*.json"):
            if path not in results:
                path.unlink()
            elif path.read_bytes() != results[path]:
                path.write_bytes(results[path])
