"""A private three-node Kafka cluster for the tests that lose brokers (``tools/kafka/cluster.sh``
on ports of its own, data under the test artifacts), and what those tests ask of it: start,
stop or SIGKILL one node, find the node that leads most partitions of a topic and the active
controller, wait until every partition has all its replicas in sync again.

The shared development broker is never touched; neither is a cluster of ``make cluster-up``
(other ports, other data dir).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from tests.support.broker import _port_free, _running, kill_group

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "tools" / "kafka" / "cluster.sh"
NODES = (1, 2, 3)


def free_port_block(preferred: int, size: int = 6) -> int:
    """A base port with ``size`` free ports from it (3 nodes x broker + controller)."""
    for base in range(preferred, preferred + 2000, 100):
        if all(_port_free(base + i) for i in range(size)):
            return base
    raise RuntimeError(f"no {size} free ports from {preferred}")


class KafkaCluster:
    def __init__(self, home: Path, base_port: int | None = None,
                 heap: str = "-Xms128m -Xmx512m") -> None:
        self.home = home
        self.base_port = base_port or free_port_block(
            int(os.environ.get("FAULTS_CLUSTER_PORT", "19192")))
        self.heap = heap

    def port(self, node: int) -> int:
        return self.base_port + 2 * (node - 1)

    def address(self, node: int) -> str:
        return f"127.0.0.1:{self.port(node)}"

    @property
    def bootstrap(self) -> str:
        return ",".join(self.address(n) for n in NODES)

    def bootstrap_without(self, *down: int) -> str:
        return ",".join(self.address(n) for n in NODES if n not in down)

    # --- nodes ---------------------------------------------------------------------------
    def _run(self, *args: str, timeout: float = 240) -> float:
        env = {
            **os.environ,
            "KAFKA_CLUSTER_HOME": str(self.home),
            "KAFKA_CLUSTER_PORT": str(self.base_port),
            "KAFKA_CLUSTER_HEAP": self.heap,
            "KAFKA_START_TIMEOUT": str(int(timeout) - 20),
        }
        started = time.monotonic()
        result = subprocess.run(["bash", str(CLUSTER_SH), *args], env=env, capture_output=True,
                                text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"cluster.sh {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stderr[-3000:]}")
        return time.monotonic() - started

    def up(self) -> float:
        """Start every node not running and wait for all; the seconds it took."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self._run("up")

    def down(self) -> float:
        return self._run("down")

    def start(self, node: int) -> float:
        """Start one node and wait until it answers; the seconds it took."""
        return self._run("node-up", str(node))

    def stop(self, node: int) -> float:
        """Clean shutdown of one node (SIGTERM: controlled shutdown moves its leaderships)."""
        return self._run("node-down", str(node))

    def pid(self, node: int) -> int | None:
        try:
            return int((self.home / f"node{node}" / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def alive(self, node: int) -> bool:
        pid = self.pid(node)
        return pid is not None and _running(pid)

    def kill(self, node: int) -> None:
        """SIGKILL one node's process group (no controlled shutdown) and wait for its ports."""
        kill_group(self.pid(node), self.port(node), f"node {node}")

    def destroy(self) -> None:
        try:
            self.down()
        except (RuntimeError, subprocess.TimeoutExpired):
            for node in NODES:
                self.kill(node)
        shutil.rmtree(self.home, ignore_errors=True)

    def log_tail(self, node: int, lines: int = 40) -> str:
        path = self.home / f"node{node}" / "logs" / "server.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    # --- who does what -------------------------------------------------------------------
    def active_controller(self) -> int:
        """The node leading the controller quorum, from the live nodes' ``quorum-state``
        files (the newest epoch wins): what ``MetadataQuorumCommand describe --status`` calls
        LeaderId, without starting a JVM."""
        best: tuple[int, int] | None = None
        for node in NODES:
            if not self.alive(node):
                continue
            path = self.home / f"node{node}" / "data" / "__cluster_metadata-0" / "quorum-state"
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if state.get("leaderId", -1) >= 0 and (best is None or state["leaderEpoch"] > best[0]):
                best = (state["leaderEpoch"], state["leaderId"])
        if best is None:
            raise RuntimeError("no live node knows a quorum leader")
        return best[1]

    async def describe(self, topics: list[str] | None = None) -> list[dict]:
        """describe_topics of ``topics`` (all, internal ones included, when None)."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=15000)
        await admin.start()
        try:
            names = topics or list(await admin.list_topics())
            return [t for t in await admin.describe_topics(names) if not t.get("error_code")]
        finally:
            await admin.close()

    async def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> the node leading it."""
        [described] = await self.describe([topic])
        return {p["partition"]: p["leader"] for p in described["partitions"]}

    async def top_leader(self, topic: str) -> int:
        """The node leading the most partitions of ``topic`` (the lowest id on a tie)."""
        counts = Counter((await self.leaders(topic)).values())
        return min(counts, key=lambda node: (-counts[node], node))

    async def under_replicated(self, topics: list[str] | None = None) -> list[str]:
        """``topic[partition]`` of every partition with fewer in-sync replicas than replicas,
        or without a leader."""
        out = []
        for topic in await self.describe(topics):
            for p in topic["partitions"]:
                if p["leader"] < 0 or len(p["isr"]) < len(p["replicas"]):
                    out.append(f"{topic['topic']}[{p['partition']}]")
        return sorted(out)

    async def wait_in_sync(self, timeout: float = 180) -> float:
        """Wait until every partition of every topic has all its replicas in sync; seconds."""
        started = time.monotonic()
        lagging: list[str] | str = "?"
        while time.monotonic() - started < timeout:
            try:
                lagging = await self.under_replicated()
            except Exception as exc:  # noqa: BLE001 - a node may still be starting
                lagging = repr(exc)
            if not lagging:
                return time.monotonic() - started
            await asyncio.sleep(0.5)
        raise AssertionError(f"replicas still out of sync after {timeout}s: {lagging}")
