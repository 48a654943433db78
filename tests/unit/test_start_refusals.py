"""The commands as an operator runs them refuse bad settings before anything starts: one
line on stderr that names the variable, a non-zero exit, no traceback (subprocesses; no
broker needed, since nothing gets as far as Kafka)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
FAUST = str(Path(sys.executable).parent / "faust")
NO_BROKER = "127.0.0.1:1"  # nothing listens: a worker that gets past the checks fails there


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    full = {
        **clean,
        "KAFKA_BOOTSTRAP_SERVERS": NO_BROKER,
        "WORKER_WEB_PORT": str(free_port()),
        "WORKER_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    return subprocess.run(
        [FAUST, "-A", "app.main", *args], cwd=REPO, env=full, capture_output=True, text=True,
        timeout=120,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SPIKE_BASELINE_HOURS", "0", "SPIKE_BASELINE_HOURS=0: should be greater than or equal to 1 "
                                      "(allowed: integer, ≥ 1, ≤ 744)"),
        ("SPIKE_RATIO", "nan", "SPIKE_RATIO=nan: should be a finite number"),
        ("TREND_RATIO", "-inf", "TREND_RATIO=-inf: should be a finite number"),
        ("DEDUPE_HORIZON_SECONDS", "-5", "DEDUPE_HORIZON_SECONDS=-5: should be greater than"),
        ("WORKER_WEB_PORT", "70000", "WORKER_WEB_PORT=70000: should be less than or equal to 65535"),
    ],
)
def test_the_worker_refuses_a_bad_value(tmp_path, variable, value, expected):
    line = one_line_error(run(["worker", "-l", "info"], tmp_path, **{variable: value}))
    assert line.startswith("error: invalid settings: ")
    assert expected in line


def test_replay_refuses_a_bad_set_before_asking_the_cluster(tmp_path):
    done = run(
        ["replay", "--shadow", "s1", "--from", "2026-11-20T00:00:00Z",
         "--set", "SPIKE_BASELINE_HOURS=0", "--set", "TREND_RATIO=-inf"],
        tmp_path,
    )
    line = one_line_error(done)
    assert "invalid settings for shadow 's1'" in line
    assert "SPIKE_BASELINE_HOURS=0: should be greater than or equal to 1" in line
    assert "TREND_RATIO=-inf: should be a finite number" in line
    assert "Kafka" not in line  # refused before any connection


def test_every_command_refuses_a_bad_environment(tmp_path):
    for command in (["export-topics", "--output", str(tmp_path / "t.json")], ["create-topics"]):
        line = one_line_error(run(command, tmp_path, HOURLY_RETENTION_SECONDS="3600"))
        assert "HOURLY_RETENTION_SECONDS=3600 is below" in line


# --- the open door (app.web.exposure) ------------------------------------------------------

def test_the_worker_refuses_an_open_address_without_a_token(tmp_path):
    line = one_line_error(run(["worker", "-l", "info"], tmp_path, WORKER_WEB_HOST="0.0.0.0"))
    assert line.startswith("error: WORKER_WEB_HOST=0.0.0.0 is not a loopback address")
    assert not (tmp_path / "data").exists()  # refused before anything started


def test_the_command_line_bind_address_is_checked_too(tmp_path):
    line = one_line_error(run(["worker", "-l", "info", "--web-bind", "0.0.0.0"], tmp_path))
    assert "WORKER_WEB_HOST=0.0.0.0 is not a loopback address" in line


@pytest.mark.parametrize(
    "extra", [{"API_TOKEN": "a-token-of-some-length"}, {"ALLOW_UNAUTHENTICATED_HTTP": "true"}]
)
def test_a_token_or_the_explicit_opt_in_lets_it_start(tmp_path, extra):
    """Past the check, the worker goes on to Kafka (where nothing listens, so it stops there)."""
    done = run(["worker", "-l", "info"], tmp_path, WORKER_WEB_HOST="0.0.0.0", **extra)
    output = done.stdout + done.stderr
    assert "is not a loopback address" not in output
    assert f"Kafka at {NO_BROKER} (PLAINTEXT): connection refused" in output
    assert done.returncode != 0


def test_a_loopback_worker_needs_no_token(tmp_path):
    done = run(["worker", "-l", "info"], tmp_path, WORKER_WEB_HOST="127.0.0.1")
    output = done.stdout + done.stderr
    assert "is not a loopback address" not in output
    assert f"Kafka at {NO_BROKER} (PLAINTEXT): connection refused" in output
