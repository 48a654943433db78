"""Who can reach a worker's HTTP API, and whether it may start so.

Without ``API_TOKEN`` every answer, profiles with their e-mail included, is given to whoever
reaches the port. That is fine on a loopback address, where only this host can; on any other
(``0.0.0.0`` in a container, a host's own address) a worker refuses to start unless the
operator opts in with ``ALLOW_UNAUTHENTICATED_HTTP=true`` (for a network that guards the
port itself). A name other than ``localhost`` counts as not loopback: what it resolves to is
not known before the server binds.
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``host`` as the server binds it: an address in 127.0.0.0/8 or ::1, or ``localhost``."""
    name = host.strip().strip("[]").lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_problem(bind_host: str, has_token: bool, allow_unauthenticated: bool) -> str | None:
    """Why a worker binding ``bind_host`` must not start, or None when it may."""
    if has_token or allow_unauthenticated or is_loopback(bind_host):
        return None
    return (
        f"WORKER_WEB_HOST={bind_host or repr(bind_host)} is not a loopback address and "
        "API_TOKEN is not set: anyone who reaches the port would read every answer, profiles "
        "included. Set API_TOKEN (clients send Authorization: Bearer <token>), bind a loopback "
        "address (WORKER_WEB_HOST=127.0.0.1), or, behind a network that guards the port "
        "itself, set ALLOW_UNAUTHENTICATED_HTTP=true"
    )
