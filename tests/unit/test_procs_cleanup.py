"""The benchmark's process helpers (bench/procs.py) stop what they started however the
benchmark's process is stopped: SIGINT, SIGTERM, SIGHUP, or its parent shell killed (as
``make bench`` is when make gets a SIGTERM). Checked in /proc, within a bounded time; the
driver below starts a child that starts a grandchild, and never stops them itself."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.commands import command_env
from tests.support.processes import in_session

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from bench import procs

    procs.die_with_parent()
    SLEEPER = ("import subprocess, sys, time; "
               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
               "print('ready', flush=True); time.sleep(600)")

    async def main():
        child = procs.Proc("sleeper", [sys.executable, "-c", SLEEPER], {}, Path(sys.argv[1])).start()
        print(child.pid, flush=True)
        await asyncio.sleep(600)  # no finally: the guard alone must stop the child

    asyncio.run(main())
""")


def start(tmp_path: Path, through_shell: bool) -> tuple[subprocess.Popen, int]:
    log = tmp_path / "sleeper.log"
    argv = [sys.executable, "-c", DRIVER, str(log)]
    if through_shell:  # bash stays the parent (no exec): `make`'s recipe shell
        argv = ["bash", "-c", '"$@"; true', "bash", *argv]
    driver = subprocess.Popen(argv, cwd=REPO, env=command_env({}), stdout=subprocess.PIPE,
                              text=True, start_new_session=True)
    child = int(driver.stdout.readline())
    deadline = time.monotonic() + 30
    while "ready" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.05)
    assert len(in_session(child)) == 2  # the child and its grandchild
    return driver, child


def assert_all_gone(child: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while in_session(child):
        if time.monotonic() > deadline:
            left = in_session(child)
            for pid in left:
                subprocess.run(["kill", "-KILL", str(pid)], check=False)
            raise AssertionError(f"still running {timeout:.0f} s later: {left}")
        time.sleep(0.1)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
                         ids=lambda s: s.name)
def test_a_signal_to_the_benchmark_stops_its_children(tmp_path, sig):
    driver, child = start(tmp_path, through_shell=False)
    driver.send_signal(sig)
    assert driver.wait(30) != 0
    assert_all_gone(child)


def test_the_parent_shell_killed_stops_the_benchmark_and_its_children(tmp_path):
    shell, child = start(tmp_path, through_shell=True)
    shell.send_signal(signal.SIGTERM)  # the shell dies; the benchmark is told (PDEATHSIG)
    shell.wait(30)
    assert_all_gone(child)
