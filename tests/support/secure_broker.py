"""A secured single-node broker of a test's own (``tools/kafka/secure.sh``): SASL_SSL with
SCRAM-SHA-512 users, a CA of its own, a mutual-TLS listener, the StandardAuthorizer with
``allow.everyone.if.no.acl.found=false``. Ports and home are the test's own; the jars are the
default broker's."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from app.settings import Settings
from tests.support.broker import _port_free

REPO = Path(__file__).resolve().parents[2]
SECURE_SH = REPO / "tools" / "kafka" / "secure.sh"
JARS = REPO / ".local" / "kafka" / "libs"


def free_port_triple(preferred: int = 49092) -> int:
    """A port with its two successors free (clients, controller, mutual TLS)."""
    for port in [preferred, *range(preferred + 10, preferred + 400, 10)]:
        if all(_port_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise RuntimeError("no three adjacent free ports")


class SecureBroker:
    def __init__(self, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port_triple(int(os.environ.get("SECURE_KAFKA_PORT", "49092")))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def mtls_bootstrap(self) -> str:
        return f"127.0.0.1:{self.port + 2}"

    @property
    def certs(self) -> Path:
        return self.home / "certs"

    @property
    def admin_properties(self) -> Path:
        return self.home / "admin.properties"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "SECURE_KAFKA_HOME": str(self.home), "SECURE_KAFKA_PORT": str(self.port),
                "KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m", "KAFKA_START_TIMEOUT": "240"}

    def run(self, *args: str, timeout: float = 180) -> str:
        result = subprocess.run(["bash", str(SECURE_SH), *args], env=self._env(),
                                capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"secure.sh {args[0]} failed ({result.returncode}):\n"
                               f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
        return result.stdout

    def start(self) -> None:
        self.run("up", timeout=300)

    def stop(self) -> None:
        self.run("down", timeout=90)

    def add_user(self, name: str, password: str) -> None:
        self.run("add-user", name, password)

    def kafka_acls_line(self, line: str) -> str:
        """Run one line as ``faust ... acls`` prints it (``kafka-acls.sh ARGS``) with Kafka's own
        AclCommand from the jars; returns its output."""
        words = shlex.split(line)
        assert words[0] == "kafka-acls.sh", line
        result = subprocess.run(
            ["java", "-cp", f"{JARS}/*", "org.apache.kafka.tools.AclCommand", *words[1:]],
            capture_output=True, text=True, timeout=180,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{line}\nfailed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result.stdout

    def admin_password(self) -> str:
        return (self.home / "admin.password").read_text().strip()

    def env(self, user: str, password: str, *, mtls: bool = False, cafile: Path | None = None) -> dict[str, str]:
        """The worker settings for ``user`` (on the mutual-TLS listener, with the client
        certificate, when ``mtls``)."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.mtls_bootstrap if mtls else self.bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": password,
            "KAFKA_SSL_CAFILE": str(cafile or self.certs / "ca.pem"),
        }
        if mtls:
            env |= {
                "KAFKA_SSL_CERTFILE": str(self.certs / "client.pem"),
                "KAFKA_SSL_KEYFILE": str(self.certs / "client.key"),
                "KAFKA_SSL_KEY_PASSWORD": (self.certs / "client.key.password").read_text().strip(),
            }
        return env

    def client_kwargs(self, user: str, password: str) -> dict:
        """aiokafka arguments for ``user``, built as the product builds them."""
        return Settings(
            kafka_bootstrap_servers=self.bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=user,
            kafka_sasl_password=password,
            kafka_ssl_cafile=self.certs / "ca.pem",
            kafka_ssl_certfile=None,
            kafka_ssl_keyfile=None,
            kafka_ssl_key_password=None,
        ).kafka_client_kwargs()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join((self.home / "logs" / "server.log").read_text(errors="replace")
                             .splitlines()[-lines:])
        except OSError:
            return ""
