"""``diff``'s output: one line per difference, or one JSON document."""

from __future__ import annotations

from typing import Any

import orjson

from app.replay.compare import CHANGED, HOURLY, INSIGHT, ONLY_LIVE, WEEKLY, Comparison

_CHANGE = {CHANGED: "changed", ONLY_LIVE: "only in live", "only_shadow": "only in shadow"}
_NOUN = {HOURLY: "hourly windows", WEEKLY: "segment weeks", INSIGHT: "insights"}


def changes(live: Any, shadow: Any, path: str = "") -> list[str]:
    """``field live -> shadow`` for each leaf that differs (dicts by key; lists whole)."""
    if isinstance(live, dict) and isinstance(shadow, dict):
        out = []
        for key in sorted(set(live) | set(shadow), key=str):
            if live.get(key) != shadow.get(key):
                out += changes(live.get(key), shadow.get(key), f"{path}{key}.")
        return out
    return [f"{path.rstrip('.')} {_short(live)} -> {_short(shadow)}"]


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode() if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def _metrics(doc: dict[str, Any] | None) -> str:
    if not doc:
        return ""
    metrics = doc.get("metrics") or {}
    return " ".join(f"{k}={_short(v)}" for k, v in metrics.items())


def _reason(skipped: str) -> str:
    """``"hourly before --from"`` -> ``"hourly windows before --from"``."""
    kind, _, reason = skipped.partition(" ")
    return f"{_NOUN.get(kind, kind)} {reason}"


def text_lines(comparison: Comparison, header: list[str], limit: int) -> list[str]:
    lines = list(header)
    compared = ", ".join(
        f"{comparison.compared[kind]:,} {_NOUN[kind]}" for kind in (HOURLY, WEEKLY, INSIGHT)
    )
    lines.append(f"compared: {compared}")
    if comparison.skipped:
        skipped = "; ".join(
            f"{n:,} {_reason(what)}" for what, n in sorted(comparison.skipped.items())
        )
        lines.append(f"not compared: {skipped}")
    lines += [f"note: {note}" for note in comparison.notes]
    for diff in comparison.differences[:limit]:
        what = _CHANGE[diff.change]
        if diff.change == CHANGED:
            detail = "; ".join(changes(diff.live, diff.shadow))
        else:
            detail = _metrics(diff.live or diff.shadow)
        lines.append(f"{diff.kind:<7} {what:<14}  {diff.key}  {detail}".rstrip())
    hidden = len(comparison.differences) - limit
    if hidden > 0:
        lines.append(f"... and {hidden:,} more (--limit, or --json for all)")
    n = len(comparison.differences)
    lines.append("no differences" if n == 0 else f"{n:,} difference{'s' if n != 1 else ''}")
    return lines


def json_document(comparison: Comparison, about: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {
            **about,
            "compared": dict(comparison.compared),
            "notCompared": dict(comparison.skipped),
            "notes": comparison.notes,
            "differences": [
                {
                    "kind": d.kind,
                    "key": d.key,
                    "change": d.change,
                    "live": d.live,
                    "shadow": d.shadow,
                }
                for d in comparison.differences
            ],
        },
        option=orjson.OPT_INDENT_2,
    )
