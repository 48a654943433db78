"""Every Kafka client the product makes takes the connection settings from one place.

Read from the source (app/ and bench/): each aiokafka consumer, producer and admin client,
each faust App and each librdkafka consumer is built with ``**`` the settings' client
arguments (``Settings.kafka_client_kwargs()``, ``faust_credentials()``, the peer's
``connection_options``), and none names the brokers or the protocol by itself, which is how a
client ends up talking PLAINTEXT to a SASL_SSL cluster.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("app/**/*.py"), *ROOT.glob("bench/**/*.py")])
KAFKA_CLIENTS = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient", "AIOKafkaClient"}
FAUST_APPS = {"App", "AnalyticsApp"}
CONNECTION_KEYWORDS = {
    "bootstrap_servers", "security_protocol", "ssl_context", "sasl_mechanism",
    "sasl_plain_username", "sasl_plain_password",
}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _calls(names: set[str]) -> list[tuple[str, ast.Call]]:
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in names:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return found


def test_the_scan_finds_the_clients_it_checks():
    """Guard against a scan that silently matches nothing (renamed imports, moved files)."""
    where = {place.split(":")[0] for place, _ in _calls(KAFKA_CLIENTS)}
    assert {"app/topics.py", "app/engine/transactions.py", "app/engine/clients.py",
            "app/generator.py", "bench/ceiling.py", "bench/groups.py"} <= where


@pytest.mark.parametrize(("place", "call"), _calls(KAFKA_CLIENTS), ids=lambda v: str(v)[:60])
def test_every_aiokafka_client_takes_the_settings_client_kwargs(place, call):
    unpacked = [kw for kw in call.keywords if kw.arg is None]
    assert unpacked, f"{place}: built without **client kwargs (Settings.kafka_client_kwargs())"
    named = CONNECTION_KEYWORDS & {kw.arg for kw in call.keywords}
    assert not named, f"{place}: sets {named} itself instead of taking them from the settings"


@pytest.mark.parametrize(("place", "call"), _calls(FAUST_APPS), ids=lambda v: str(v)[:60])
def test_every_faust_app_takes_the_settings_credentials(place, call):
    credentials = [kw for kw in call.keywords if kw.arg == "broker_credentials"]
    assert credentials, f"{place}: faust App without broker_credentials"
    assert "faust_credentials" in ast.unparse(credentials[0].value), place


# The functions that turn the settings into client arguments: the only ones that may.
BUILDERS = {"kafka_client_kwargs", "connection_options"}


def test_no_connection_dict_is_written_by_hand():
    """``{"bootstrap_servers": ...}`` handed to a helper is a client without security."""
    offenders = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), str(path))
        allowed = {
            id(inner)
            for fn in ast.walk(tree)
            if isinstance(fn, ast.FunctionDef) and fn.name in BUILDERS
            for inner in ast.walk(fn)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict) and id(node) not in allowed:
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if keys & {"bootstrap_servers", "bootstrap.servers"}:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_librdkafka_consumers_of_the_peer_take_the_connection_config():
    calls = [(p, c) for p, c in _calls({"Consumer"}) if p.startswith("bench/")]
    assert calls, "the quix peer's profile consumer was not found"
    for place, call in calls:
        assert "as_librdkafka_dict" in ast.unparse(call), place


def test_the_quix_peer_gets_the_same_connection_settings():
    from app.settings import Settings
    from bench.peers.quix_connection import connection_options

    ca = Path(__file__).parent / "fixtures" / "test-ca.pem"
    s = Settings(kafka_bootstrap_servers="b:9093", kafka_security_protocol="SASL_SSL",
                 kafka_sasl_mechanism="SCRAM-SHA-512", kafka_sasl_username="analytics",
                 kafka_sasl_password="pw", kafka_ssl_cafile=ca)
    assert connection_options(s) == {
        "bootstrap_servers": "b:9093", "security_protocol": "sasl_ssl",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "analytics", "sasl_password": "pw",
        "ssl_ca_location": str(ca),
    }
    plain = connection_options(Settings(kafka_bootstrap_servers="b:9092"))
    assert plain == {"bootstrap_servers": "b:9092", "security_protocol": "plaintext"}
