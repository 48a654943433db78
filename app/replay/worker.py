"""A worker of a shadow: ``faust -A app.main worker`` in the shadow's environment.

A shadow's worker is an ordinary worker whose environment names the shadow (``Shadow.env``),
so any number of them can run, on any host, started by ``replay`` or by anything that sets
that environment (``replay --print-env``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import app

# Set per worker by the replay command, never inherited from the live workers' environment.
PER_WORKER = ("WORKER_WEB_PORT", "WORKER_DATA_DIR", "WORKER_CANONICAL_URL")
# The directory that holds the ``app`` package: the worker runs the same code as the command.
CODE_ROOT = Path(app.__file__).resolve().parent.parent


def default_data_dir(shadow_name: str, port: int) -> Path:
    return Path("data") / f"shadow-{shadow_name}" / f"worker-{port}"


def worker_env(
    base: Mapping[str, str],
    shadow_env: Mapping[str, str],
    port: int,
    data_dir: Path,
    canonical_url: str | None = None,
) -> dict[str, str]:
    """``base`` (the live environment) without its per-worker settings, plus the shadow's
    settings and this worker's port and data dir."""
    env = {k: v for k, v in base.items() if k not in PER_WORKER}
    env.update(shadow_env)
    env["WORKER_WEB_PORT"] = str(port)
    env["WORKER_DATA_DIR"] = str(data_dir)
    if canonical_url:
        env["WORKER_CANONICAL_URL"] = canonical_url
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(CODE_ROOT), base.get("PYTHONPATH")) if p)
    return env


def worker_command(loglevel: str) -> list[str]:
    return [sys.executable, "-m", "faust", "-A", "app.main", "worker", "-l", loglevel]


def spawn(env: dict[str, str], loglevel: str) -> subprocess.Popen:
    """Start the worker in a session of its own: a Ctrl-C reaches the replay command, which
    stops its worker once (a second signal would cut faust's graceful shutdown short)."""
    return subprocess.Popen(worker_command(loglevel), env=env, start_new_session=True)


def env_lines(env: Mapping[str, str]) -> list[str]:
    """``NAME=value`` lines a shell can ``export``."""
    return [f"{name}={shlex.quote(value)}" for name, value in sorted(env.items())]
