"""tools/workers.sh and tools/demo.sh stop every process they started when they are stopped:
Ctrl-C (SIGINT), SIGTERM, or a closed terminal (SIGHUP), with real workers on the real broker.
Checked in /proc by the sessions and process groups of the script and its children (the
scripts give each child a process group of its own)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.commands import command_env
from tests.support.workers import isolated_env

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(400)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def table() -> dict[int, tuple[int, int, int, str]]:
    """pid -> (parent, process group, session, command line) of every live process."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fields[0] != "Z":
            out[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[3]), cmd)
    return out


def started_by(script: int, known: set[int]) -> set[int]:
    """The script's descendants, and everything in a process group one of them led (``known``:
    groups seen before, so that a child re-parented after the script's end is still found)."""
    procs = table()
    found: set[int] = set()
    frontier = {script}
    while frontier:
        frontier = {pid for pid, row in procs.items() if row[0] in frontier} - found
        found |= frontier
    known |= {procs[pid][1] for pid in found}
    return found | {pid for pid, row in procs.items() if row[1] in known and pid != script}


def run_script(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(["bash", *args], cwd=REPO, env=command_env(env), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_and_check(script: subprocess.Popen, sig: signal.Signals, groups: set[int], log: Path) -> None:
    script.send_signal(sig)  # to the script only, as a supervisor or the terminal would
    script.wait(90)
    deadline = time.monotonic() + 60
    left = started_by(script.pid, groups)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = started_by(script.pid, groups)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"left running after {sig.name}: {left}\n{log.read_text()[-3000:]}"


def wait_for(log: Path, text: str, script: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert script.poll() is None, f"the script exited {script.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r}:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)


def clean_up(script: subprocess.Popen, groups: set[int], port: int) -> None:
    """Whatever a test leaves: the processes the script started, the script, the data dir of
    the worker on ``port``."""
    for pid in started_by(script.pid, groups):
        os.kill(pid, signal.SIGKILL)
    if script.poll() is None:
        script.kill()
    shutil.rmtree(REPO / "data" / f"worker-{port}", ignore_errors=True)


def script_env(kafka_bootstrap: str) -> dict[str, str]:
    # KAFKA_PORT=1: the scripts take KAFKA_BOOTSTRAP_SERVERS as a broker of someone else's,
    # which they neither start nor stop.
    return {**isolated_env(kafka_bootstrap, TOPIC_PARTITIONS="2"), "KAFKA_PORT": "1"}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_workers_sh_stops_its_workers(kafka_bootstrap, tmp_path, sig):
    port = free_port()
    env = {**script_env(kafka_bootstrap), "WORKERS_FIRST_PORT": str(port)}
    log = tmp_path / "workers.log"
    script = run_script(["tools/workers.sh", "1"], env, log)
    groups: set[int] = set()
    try:
        wait_for(log, "Press Ctrl-C to stop all workers", script, 240)
        assert "using Kafka at" in log.read_text()
        children = started_by(script.pid, groups)
        assert any("app.main worker" in table()[pid][3] for pid in children if pid in table())
        stop_and_check(script, sig, groups, log)
    finally:
        clean_up(script, groups, port)


def test_demo_sh_stops_its_worker_and_generator(kafka_bootstrap, tmp_path):
    port = free_port()
    env = {**script_env(kafka_bootstrap), "DEMO_PORT": str(port), "DEMO_RATE": "20"}
    log = tmp_path / "demo.log"
    script = run_script(["tools/demo.sh"], env, log)
    groups: set[int] = set()
    try:
        wait_for(log, "Press Ctrl-C to stop.", script, 240)
        commands = [table()[pid][3] for pid in started_by(script.pid, groups) if pid in table()]
        assert any("app.main worker" in c for c in commands)
        assert any("app.generator" in c for c in commands)
        stop_and_check(script, signal.SIGTERM, groups, log)
    finally:
        clean_up(script, groups, port)
