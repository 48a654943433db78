"""The worker image under podman, for tests/image: build it (tools/image/build.sh, as `make
image` does), run a compose service from it as a container on the host network, stop it as an
orchestrator does (SIGTERM, then SIGKILL after the grace period), and see what is left.

podman runs with tools/image/containers.conf (runc, cgroupfs, no default ulimits), through
tools/image/podman.sh, exactly as the Makefile targets run it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.workers import REPO, Worker

PODMAN = ["bash", str(REPO / "tools" / "image" / "podman.sh")]
IMAGE = os.environ.get("IMAGE", "localhost/property-analytics:local")
LOG_DIR = REPO / "tests" / "artifacts" / "logs"


def require_podman() -> None:
    """podman is installed, else the test fails under `make test` / CI (after `make
    system-deps` tried to install it) and is skipped elsewhere."""
    if shutil.which("podman"):
        return
    message = "podman is not installed (bash tools/ensure-podman.sh installs Debian's package)"
    if any(os.environ.get(n, "").strip().lower() not in ("", "0", "false", "no")
           for n in ("CI", "REQUIRE_BROKER")):
        pytest.fail(message + "; CI is set, so this is an error, not a skip", pytrace=False)
    pytest.skip(message)


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([*PODMAN, *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}: "
                             f"{result.stderr[-2000:]}")
    return result


def build_image(log: Path) -> float:
    """`make image`'s build (the local base first when no registry answers); seconds taken."""
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        code = subprocess.run(["bash", str(REPO / "tools" / "image" / "build.sh")], cwd=REPO,
                              stdout=out, stderr=subprocess.STDOUT, timeout=1200).returncode
    assert code == 0, f"the image build exited {code}; see {log}"
    return time.monotonic() - started


@dataclass
class ContainerWorker(Worker):
    """A worker in a container of IMAGE: the same interface as a local Worker (url, get,
    wait_ready, stop), the process being the `podman run` in the foreground, which lives
    exactly as long as the container."""

    image: str = IMAGE
    name: str = ""
    volume: str = ""
    command: list[str] | None = None
    exit_code: int | None = None
    stop_seconds: float | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def run_args(self) -> list[str]:
        env = {**self.env, **self.extra_env}
        if self.command is None:  # the worker; on the host network, its port is the host's
            env.setdefault("WORKER_WEB_PORT", str(self.port))
        args = ["run", "--name", self.name, "--network", "host",
                # podman schedules health checks with systemd timers; the test runs them itself
                # (`podman healthcheck run`), which runs the image's HEALTHCHECK command.
                "--health-interval", "disable"]
        if self.volume:
            args += ["-v", f"{self.volume}:/data"]
        for key, value in sorted(env.items()):
            args += ["-e", f"{key}={value}"]
        return [*args, self.image, *(self.command or [])]

    def start(self) -> ContainerWorker:
        assert self.name, "a container needs a name"
        podman("rm", "-f", "--ignore", self.name, check=False)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([*PODMAN, *self.run_args()], cwd=REPO, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self, timeout: float = 30) -> int | None:
        """`podman stop -t timeout`: SIGTERM (the image's STOPSIGNAL), SIGKILL after
        ``timeout`` s. Records how long it took and the container's exit code."""
        if self.proc is None:
            return None
        started = time.monotonic()
        podman("stop", "-t", str(int(timeout)), self.name, timeout=timeout + 60, check=False)
        self.proc.wait(60)
        self.stop_seconds = time.monotonic() - started
        self.exit_code = self.state()["ExitCode"]
        return self.exit_code

    def kill(self) -> None:
        podman("kill", self.name, check=False)
        if self.proc is not None:
            self.proc.wait(60)

    def state(self) -> dict:
        result = podman("inspect", "--format", "json", self.name)
        return json.loads(result.stdout)[0]["State"]

    def remove(self) -> None:
        if self.alive:
            self.kill()
        # -v: the anonymous volume a container without -v gets for the image's VOLUME /data too
        podman("rm", "-f", "-v", "--ignore", self.name, check=False)
        if self.volume:
            podman("volume", "rm", "-f", self.volume, check=False)


def processes_of(container_id: str, settle_s: float = 5) -> list[str]:
    """Host processes whose command line names the container (its conmon, a runtime call),
    waiting up to ``settle_s`` for them to go: none once it has stopped. The container's own
    processes die with its PID 1 (its PID namespace ends)."""
    deadline = time.monotonic() + settle_s
    while (left := _processes_naming(container_id)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _processes_naming(container_id: str) -> list[str]:
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if container_id in cmdline:
            out.append(f"{proc.name}: {cmdline[:200]}")
    return out
