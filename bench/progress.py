"""One progress line on stderr: rewritten in place on a terminal, a plain line every few
seconds otherwise (``make bench`` in CI logs)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, every_s: float = 5.0) -> None:
        self._tty = sys.stderr.isatty()
        self._every_s = every_s
        self._last = 0.0
        self._width = 0
        self._started = time.monotonic()

    def update(self, stage: str, text: str, force: bool = False) -> None:
        now = time.monotonic()
        line = f"[{now - self._started:6.0f}s] {stage}: {text}"
        if self._tty:
            pad = max(self._width - len(line), 0)
            sys.stderr.write("\r" + line + " " * pad)
            sys.stderr.flush()
            self._width = len(line)
        elif force or now - self._last >= self._every_s:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            self._last = now

    def done(self, stage: str, text: str) -> None:
        """A stage's result: always printed on its own line."""
        self.update(stage, text, force=True)
        if self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._width = 0


def rate_text(done: int, total: int | None, elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    of = f"/{total:,}" if total else ""
    return f"{done:,}{of} events, {rate:,.0f}/s"
