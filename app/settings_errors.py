"""Bad settings as an operator reads them: the variable, the value, what is allowed.

pydantic's own report names the Python field and prints the input, secrets included, under a
traceback. A worker, a command and ``replay --set`` instead say, on one line,
``SPIKE_BASELINE_HOURS=0: should be greater than or equal to 1 (allowed: integer, ≥ 1,
≤ 744)`` and exit non-zero before anything starts (``settings_or_exit``).
"""

from __future__ import annotations

import sys
import types
import typing
from pathlib import Path
from typing import Any, NoReturn

from annotated_types import Ge, Gt, Le, Lt, MinLen
from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

from app.settings import Settings

EXIT_BAD_SETTINGS = 2  # as a command given wrong arguments (app.commands._cli.USAGE)
_TYPES = {str: "string", int: "integer", float: "finite number", bool: "`true` / `false`",
          Path: "path", SecretStr: "secret"}
_BOUNDS = ((Ge, "ge", "≥"), (Gt, "gt", ">"), (Le, "le", "≤"), (Lt, "lt", "<"))
_SHOWN_CHARS = 60


class SettingsError(ValueError):
    """Settings that cannot be used; the message names each variable and what is allowed."""


def env_name(field_name: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{field_name}".upper()


def _plain(annotation: Any) -> Any:
    """``int | None`` -> ``int``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return next(a for a in typing.get_args(annotation) if a is not type(None))
    return annotation


def type_text(field: FieldInfo) -> str:
    """The field's type as a reader sets it: choices, bounds, "secret"; never Python's repr."""
    annotation = _plain(field.annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " / ".join(f"`{choice}`" for choice in typing.get_args(annotation))
    text = _TYPES.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = [
        f"{symbol} {_number(getattr(item, attr))}"
        for item in field.metadata
        for kind, attr, symbol in _BOUNDS
        if isinstance(item, kind)
    ]
    bounds += [f"at least {m.min_length} characters" for m in field.metadata if isinstance(m, MinLen)]
    return f"{text}, {', '.join(bounds)}" if bounds else text


def _number(value: float) -> str:
    """``1000000.0`` as ``1000000``, ``0.5`` as is."""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _secret(field: FieldInfo) -> bool:
    return _plain(field.annotation) is SecretStr


def _shown(value: Any) -> str:
    """A value as typed, cut short; quoted when it has spaces or is empty."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > _SHOWN_CHARS:
        text = text[:_SHOWN_CHARS] + "..."
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        return repr(text)
    return text


def explain(exc: ValidationError) -> str:
    """One line for all the problems of ``exc``, each naming its variable and value."""
    fields = Settings.model_fields
    problems = []
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ").replace("Input should be", "should be")
        loc = err["loc"]
        field = fields.get(str(loc[0])) if loc else None
        if field is None:  # a rule over several settings: its message names them
            problems.append(message)
            continue
        name = env_name(str(loc[0]))
        value = "<hidden>" if _secret(field) else _shown(err.get("input"))
        problems.append(f"{name}={value}: {message} (allowed: {type_text(field)})")
    return "; ".join(problems)


def load_settings(**values: Any) -> Settings:
    """Settings from the environment (and ``values``), or SettingsError with ``explain``."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise SettingsError(explain(exc)) from None


def settings_or_exit(**values: Any) -> Settings:
    """``load_settings``, or ``error: invalid settings: ...`` on stderr and exit 2: at start,
    where a traceback would bury the one line that matters."""
    try:
        return load_settings(**values)
    except SettingsError as exc:
        fail(f"invalid settings: {exc}")


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_BAD_SETTINGS)
