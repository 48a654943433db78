"""docker-compose.yml read as the image test needs it: a service's environment with compose's
variable interpolation, its volumes, ports and grace period, and the `podman run` arguments
that start the same service against another broker.

No compose tool can run the file on the development machines (its broker image comes from a
registry they cannot reach), so tests/image starts the file's own worker and topics services,
with the file's settings, on the host network next to the local broker; only the settings that
name the network (broker address, ports, canonical URLs) and the per-test names are replaced
(``RUN_OVERRIDES``), and tests/image/test_compose_file.py checks the rest against the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"

# What the image test sets itself, and why: the broker and the workers' addresses are the
# host's, not the compose network's; app id and topics are the test's own; API_TOKEN is the
# test's secret. Every other variable of a service is passed exactly as the file sets it.
RUN_OVERRIDES = frozenset({
    "KAFKA_BOOTSTRAP_SERVERS", "WORKER_WEB_PORT", "WORKER_CANONICAL_URL", "API_TOKEN",
    "APP_ID", "VIEWS_TOPIC", "PROFILES_TOPIC", "PROPERTY_EVENTS_TOPIC", "INSIGHTS_TOPIC",
    "PARTIALS_PUBLISH_SECONDS", "COMMIT_INTERVAL_SECONDS",
})

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<bad>))"
)


class ComposeError(ValueError):
    """The compose file asks for what it cannot have (a required variable unset, bad syntax)."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable substitution: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or
    empty), ``${VAR-default}`` (unset), ``${VAR:?message}`` / ``${VAR?message}`` (an error when
    missing), ``$$`` for a literal ``$``. An unset plain variable is the empty string, as in
    compose."""

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["bad"] is not None and match["named"] is None and match["braced"] is None:
            at = value[match.start():][:20]
            raise ComposeError(f"invalid interpolation at {at!r} in {value!r}")
        name = match["braced"] or match["named"]
        got = env.get(name)
        op, arg = match["op"], match["arg"] or ""
        missing = got is None or (got == "" and op is not None and op.startswith(":"))
        if op in (":-", "-"):
            return arg if missing else got
        if op in (":?", "?"):
            if missing:
                raise ComposeError(f"{name} is required: {arg or 'not set'}")
            return got
        return got or ""

    return _VARIABLE.sub(one, value)


@dataclass(frozen=True)
class Service:
    """The parts of a compose service the image test runs."""

    name: str
    image: str | None
    build: object
    command: list[str] | None
    environment: dict[str, str]
    volumes: dict[str, str]  # target path in the container -> named volume
    ports: list[str]
    hostname: str | None
    stop_grace_s: float | None
    raw: dict


def _duration_s(value: object) -> float | None:
    """Compose durations: ``30s``, ``1m30s``, ``500ms``, ``2h``."""
    if value is None:
        return None
    text = str(value).strip()
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ComposeError(f"bad duration {value!r}")
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    return sum(float(number) * scale[unit] for number, unit in parts)


def _environment(raw: object, env: Mapping[str, str]) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, env.get(item, "")) for item in raw)
        return {key: interpolate(str(value), env) for key, value in pairs}
    if isinstance(raw, dict):
        return {str(k): "" if v is None else interpolate(str(v), env) for k, v in raw.items()}
    raise ComposeError(f"environment must be a list or a mapping, not {type(raw).__name__}")


def _volumes(raw: object) -> dict[str, str]:
    out = {}
    for item in raw or ():
        if not isinstance(item, str) or item.count(":") not in (1, 2):
            raise ComposeError(f"volume {item!r} is not SOURCE:TARGET[:MODE]")
        source, target = item.split(":")[:2]
        out[target] = source
    return out


def service(compose: dict, name: str, env: Mapping[str, str]) -> Service:
    """One service of a parsed compose file (YAML anchors and ``<<`` merges already resolved by
    the parser), its variables interpolated from ``env``."""
    services = compose.get("services") or {}
    if name not in services:
        raise ComposeError(f"no service {name!r} in the compose file (has {sorted(services)})")
    raw = services[name]
    command = raw.get("command")
    if isinstance(command, str):
        raise ComposeError(f"service {name}: write the command as a list, not a shell string")
    return Service(
        name=name,
        image=raw.get("image"),
        build=raw.get("build"),
        command=[interpolate(str(part), env) for part in command] if command else None,
        environment=_environment(raw.get("environment"), env),
        volumes=_volumes(raw.get("volumes")),
        ports=[str(p) for p in raw.get("ports") or ()],
        hostname=raw.get("hostname"),
        stop_grace_s=_duration_s(raw.get("stop_grace_period")),
        raw=raw,
    )


def load(path: Path = COMPOSE_FILE) -> dict:
    with path.open() as f:
        return yaml.safe_load(f)


def run_environment(svc: Service, overrides: Mapping[str, str]) -> dict[str, str]:
    """The service's environment with the test's overrides; an override outside
    ``RUN_OVERRIDES`` is refused, so the test cannot drift from the file unnoticed."""
    unknown = set(overrides) - RUN_OVERRIDES
    if unknown:
        raise ComposeError(f"not an allowed override of the compose settings: {sorted(unknown)}")
    return {**svc.environment, **overrides}
