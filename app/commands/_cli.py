"""What the commands share: clear errors and arguments checked before any work starts."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from app.windows import MAX_MS, parse_iso

# Exit codes: 0 done (diff: no differences), 1 differences or mismatches found, 2 the command
# could not do its job (bad arguments, a missing shadow, a broker error).
USAGE = 2


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Print ``error: message`` and exit: a faust command that raises prints a traceback."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def parse_time(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A click callback: an ISO-8601 instant with an offset or ``Z`` -> epoch ms."""
    if value is None:
        return None
    try:
        ms = parse_iso(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time with an offset, e.g. 2026-11-20T14:00:00Z"
        ) from None
    if not 0 <= ms <= MAX_MS:
        raise click.BadParameter(f"{value!r} is before 1970 or after 9999")
    return ms
