"""py-spy on a running worker: record collapsed stacks, then a text summary and an SVG
flame graph (icicle) drawn from the same samples.

Recorded with ``--threads`` and ``--nonblocking`` (the worker is not paused while sampled,
which keeps py-spy's cost on the measured worker small) and without ``--idle``: samples are
taken only while a thread is running or runnable, so shares are shares of the time the worker
was busy, not of wall time (the stage's CPU share gives that).
"""

from __future__ import annotations

import html
import re
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

PY_SPY = str(Path(sys.executable).parent / "py-spy")
# A leaf that is the event loop's entry point means time in the loop's own C code (uvloop:
# polling, socket I/O, scheduling), not in any Python function.
LOOP_LEAVES = re.compile(r"^(select|poll|epoll|_run_once|run_forever|run_until_complete|"
                         r"Worker\.execute_from_commandline|ServiceThread\._start_thread)\b")
_LINE = re.compile(r"\s*\(([^()]*?):\d+\)$")


def start_record(pid: int, seconds: int, raw_path: Path, rate: int = 100) -> subprocess.Popen:
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [
            PY_SPY, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", str(rate),
            "--threads", "--nonblocking", "--format", "raw", "--output", str(raw_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _frames(line: str) -> tuple[list[str], int] | None:
    stack, _, count = line.rstrip().rpartition(" ")
    if not stack or not count.isdigit():
        return None
    return stack.split(";"), int(count)


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` -> ``func (module.py)``: one name per function."""
    match = _LINE.search(frame)
    if not match:
        return frame.strip()
    path = match.group(1)
    parts = path.split("/")
    where = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{frame[: match.start()].strip()} ({where})"


def summarize(raw_path: Path, top: int = 25) -> str:
    stacks = [parsed for line in raw_path.read_text().splitlines() if (parsed := _frames(line))]
    total = sum(count for _, count in stacks)
    if not total:
        return "no samples\n"
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    thread_loop: Counter[str] = Counter()
    for frames, count in stacks:
        thread = "?"
        if frames and frames[0].startswith(("thread ", "process ")):
            thread, frames = frames[0], frames[1:]
            # the thread's own entry frame names it better than its id
            if len(frames) > 1:
                thread = f"{thread} {_short(frames[min(2, len(frames) - 1)])}"
        names = [_short(f) for f in frames] or ["?"]
        leaf = names[-1]
        threads[thread] += count
        if LOOP_LEAVES.match(leaf):
            thread_loop[thread] += count
        self_time[leaf] += count
        for name in set(names):
            inclusive[name] += count
    out = [f"samples (busy only): {total}", "", "threads (share of samples, of which in the event loop's C code):"]
    out += [
        f"  {count / total:6.1%}  ({thread_loop[name] / count:.0%} loop)  {name}"
        for name, count in threads.most_common(8)
    ]
    out += ["", f"top {top} by own time (leaf frame):"]
    out += [f"  {count / total:6.1%}  {name}" for name, count in self_time.most_common(top)]
    out += ["", f"top {top} by total time (frame anywhere on the stack):"]
    out += [f"  {count / total:6.1%}  {name}" for name, count in inclusive.most_common(top)]
    return "\n".join(out) + "\n"


def render_svg(raw_path: Path, svg_path: Path, title: str, width: int = 1600, row: int = 16) -> None:
    """An icicle graph: root on top, callees below, width proportional to samples."""
    tree: dict = {"n": 0, "c": {}}
    for line in raw_path.read_text().splitlines():
        parsed = _frames(line)
        if not parsed:
            continue
        frames, count = parsed
        node = tree
        node["n"] += count
        for frame in frames:
            node = node["c"].setdefault(_short(frame), {"n": 0, "c": {}})
            node["n"] += count
    total = tree["n"] or 1
    rects: list[str] = []
    depth_max = 0

    def walk(node: dict, x: float, depth: int) -> None:
        nonlocal depth_max
        for name, child in sorted(node["c"].items()):
            w = child["n"] / total * width
            if w >= 0.5:
                depth_max = max(depth_max, depth)
                y = 24 + depth * row
                hue = 20 + zlib.crc32(name.encode()) % 40
                label = html.escape(name)
                text = label if w > 7 * len(name) else (label[: int(w / 7)] if w > 30 else "")
                rects.append(
                    f'<g><title>{label} ({child["n"]} samples, {child["n"] / total:.1%})</title>'
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" fill="hsl({hue},80%,60%)"/>'
                    f'<text x="{x + 2:.1f}" y="{y + row - 4}">{text}</text></g>'
                )
                walk(child, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = 24 + (depth_max + 2) * row
    svg_path.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="monospace" font-size="11">'
        f'<text x="4" y="16" font-size="13">{html.escape(title)} ({total} samples; hover for names)</text>'
        + "".join(rects)
        + "</svg>\n"
    )
