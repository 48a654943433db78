"""Processes as /proc shows them, for the tests that check what a command leaves running."""

from __future__ import annotations

from pathlib import Path


def in_session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (exited ones not yet reaped left out)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids
