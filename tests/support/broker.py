"""A dedicated single-node Kafka broker for tests that stop, restart or SIGKILL the broker.

Started and stopped through ``tools/kafka/kafka.sh`` (``KAFKA_PORT``, ``KAFKA_HOME_DIR``), with
its own ports and data dir, so the shared development broker is never touched. The jars are
those already resolved for the default broker (``.local/kafka/libs``), linked, not downloaded
again. ``kill`` is the one thing kafka.sh does not offer (its ``down`` is SIGTERM, SIGKILL only
after 30 s): it SIGKILLs the broker's process group from kafka.sh's pid file.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "tools" / "kafka" / "kafka.sh"
SHARED_LIBS = REPO / ".local" / "kafka" / "libs"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pair(preferred: int = 29092) -> int:
    """A port whose successor is free too (kafka.sh puts the controller on KAFKA_PORT + 1)."""
    if _port_free(preferred) and _port_free(preferred + 1):
        return preferred
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65535 and _port_free(port + 1):
            return port
    raise RuntimeError("no two adjacent free ports")


def _running(pid: int) -> bool:
    """Alive and not a zombie (the broker is not our child: init reaps it, eventually)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def kill_group(pid: int | None, port: int, what: str) -> None:
    """SIGKILL a broker's process group (``pid``, none: not running) and wait until it is gone
    and its two ports (``port``, ``port + 1``) are free.

    The JVM takes a moment to die: its leader thread can show as a zombie while other threads
    still hold the listening sockets.
    """
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not _running(pid) and _port_free(port) and _port_free(port + 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} (pid {pid}) or its ports survived SIGKILL")


class Broker:
    def __init__(self, home: Path, port: int | None = None, heap: str = "-Xms128m -Xmx512m") -> None:
        self.home = home
        self.port = port or free_port_pair(int(os.environ.get("FAULTS_KAFKA_PORT", "29092")))
        self.heap = heap

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        try:
            return int((self.home / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _run(self, command: str, timeout: float = 180) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_HOME_DIR": str(self.home),
            "KAFKA_HEAP_OPTS": self.heap,
            "KAFKA_START_TIMEOUT": str(int(timeout) - 10),
        }
        result = subprocess.run(
            ["bash", str(KAFKA_SH), command], env=env, capture_output=True, text=True, timeout=timeout
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka.sh {command} failed ({result.returncode}):\n{result.stderr[-3000:]}")
        return result

    def _link_jars(self) -> None:
        """Share the default broker's jars (and its pom stamp, so kafka.sh takes them as is)."""
        libs = self.home / "libs"
        if libs.exists() or not (SHARED_LIBS / ".pom.sha256").exists():
            return  # already there, or nothing to share: kafka.sh resolves the jars itself
        libs.mkdir(parents=True)
        for jar in SHARED_LIBS.glob("*.jar"):
            (libs / jar.name).symlink_to(jar)
        shutil.copy(SHARED_LIBS / ".pom.sha256", libs / ".pom.sha256")

    def start(self, timeout: float = 180) -> float:
        """Start (or restart) it and wait until it answers; returns the seconds it took."""
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self._link_jars()
        self._run("up", timeout)
        return time.monotonic() - started

    def stop(self, timeout: float = 90) -> float:
        """Clean shutdown (SIGTERM, as kafka.sh down); returns the seconds it took."""
        started = time.monotonic()
        self._run("down", timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the broker's process group: no controlled shutdown, no flush."""
        kill_group(self.pid, self.port, "broker")

    def destroy(self) -> None:
        """Stop it (SIGKILL if need be) and delete its home (data, logs, linked jars)."""
        try:
            self._run("down", 60)
        except (RuntimeError, subprocess.TimeoutExpired):
            self.kill()
        shutil.rmtree(self.home, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        path = self.home / "logs" / "server.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
