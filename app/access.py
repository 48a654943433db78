"""Before a worker joins its group: can it reach the cluster, and may it do what it needs?

Without these checks a wrong password, an untrusted CA or a missing ACL shows as a worker
that retries quietly for ever: aiokafka logs the cause once and then reports only "Unable to
bootstrap", and a consumer group the principal may not read is retried without a word while
``/ready`` stays 503. At start-up (``AnalyticsApp.on_first_start``) the worker instead

1. connects to each bootstrap broker once, with the product's own connection settings, and
   turns the first failure into a sentence that names the cause and the setting to fix
   (``check_connection``);
2. asks the cluster which operations the principal may do on each of its topics (Metadata
   v8, ``topic_authorized_operations``) and on its consumer group (DescribeGroups v3), and
   compares them with the ACLs ``app.acls`` says a worker needs (``check_privileges``); before
   the worker creates missing topics (a topic it may not even see is reported, a topic that
   does not exist yet is skipped) and again after it created some.

Either raises ``AccessProblem``; the worker then exits with that message within seconds.
The transactional ids cannot be checked without using them: a missing ACL there fails the
first transaction, which is fatal too (``app.engine.transactions``, refused).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    GroupIdNotFound,
    IncompatibleBrokerVersion,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    for_code,
)
from aiokafka.protocol.admin import DescribeGroupsResponse_v3
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Boolean, Int16, Int32, Schema, String

from app.acls import GROUP, LITERAL, TOPIC, Acl, worker_acls
from app.settings import Settings
from app.topics import topic_specs

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
COORDINATOR_TIMEOUT_S = 60.0
# Kafka's AclOperation codes: bit (1 << code) of an ``authorized_operations`` field.
OPERATION_CODES = {
    "Read": 3, "Write": 4, "Create": 5, "Delete": 6, "Alter": 7, "Describe": 8,
    "ClusterAction": 9, "DescribeConfigs": 10, "AlterConfigs": 11, "IdempotentWrite": 12,
}
TOPIC_AUTHORIZATION_FAILED = 29
UNKNOWN_TOPIC_OR_PARTITION = 3
# faust's leader-election topic, created and read by its consumer (faust.assignor).
LEADER_TOPIC_SUFFIX = "-__assignor-__leader"
ACLS_HINT = "print the ACLs a worker needs with: faust -A app.main acls --principal {principal}"


class AccessProblem(RuntimeError):
    """The worker cannot use the cluster as configured; the message says why and what to fix."""


def principal_of(s: Settings) -> str:
    """The principal the brokers see, as far as the settings tell."""
    if s.kafka_security_protocol.startswith("SASL"):
        return f"User:{s.kafka_sasl_username}"
    if s.kafka_security_protocol == "SSL" and s.kafka_ssl_certfile is not None:
        return "User:<the subject of KAFKA_SSL_CERTFILE>"
    return "User:ANONYMOUS"


# --- 1. connection -------------------------------------------------------------------------

def explain_connection_error(s: Settings, address: str, exc: BaseException) -> str:
    """One sentence: why connecting to ``address`` failed and which setting to look at."""
    protocol = s.kafka_security_protocol
    where = f"Kafka at {address} ({protocol})"
    if isinstance(exc, SaslAuthenticationFailed):
        return (
            f"{where}: SASL authentication of user {s.kafka_sasl_username!r} with "
            f"{s.kafka_sasl_mechanism} failed: wrong KAFKA_SASL_PASSWORD, or no such "
            f"{s.kafka_sasl_mechanism} user on the cluster (broker: {exc})"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return (
            f"{where}: the broker does not offer KAFKA_SASL_MECHANISM={s.kafka_sasl_mechanism} "
            f"on this listener ({exc})"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{where}: TLS: the broker's certificate is not trusted "
            f"({exc.verify_message or exc}): set KAFKA_SSL_CAFILE to the CA that signed the "
            "brokers' certificates (now: "
            f"{s.kafka_ssl_cafile or 'unset, the system CAs'}), and check the broker's "
            "certificate names this host"
        )
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or str(exc)).upper()
        if "CERTIFICATE_REQUIRED" in reason or "HANDSHAKE_FAILURE" in reason:
            return (
                f"{where}: TLS: the broker requires a client certificate ({exc.reason}): set "
                "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE to a certificate its CA signed"
            )
        if "UNKNOWN_CA" in reason or "BAD_CERTIFICATE" in reason:
            return (
                f"{where}: TLS: the broker does not accept the client certificate "
                f"KAFKA_SSL_CERTFILE={s.kafka_ssl_certfile} ({exc.reason}): it must be signed by "
                "a CA the broker trusts"
            )
        if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason:
            return (
                f"{where}: TLS: the listener does not speak TLS ({exc.reason}): check "
                "KAFKA_SECURITY_PROTOCOL and the port"
            )
        return f"{where}: TLS handshake failed: {exc!r}"
    if _closed(exc):
        if protocol.endswith("SSL"):
            return (
                f"{where}: the broker closed the connection after the TLS handshake ({exc!r}): "
                "its listener may require a client certificate (ssl.client.auth=required: set "
                "KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE), or not speak TLS at all (check "
                "KAFKA_SECURITY_PROTOCOL and the port)"
            )
        return (
            f"{where}: the broker closed the connection ({exc!r}): its listener may expect "
            "TLS or SASL (check KAFKA_SECURITY_PROTOCOL and the port)"
        )
    if isinstance(exc, ConnectionRefusedError):
        return f"{where}: connection refused: no broker listens there (KAFKA_BOOTSTRAP_SERVERS)"
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return (
            f"{where}: no answer within {CONNECT_TIMEOUT_S:.0f}s: a wrong "
            "KAFKA_SECURITY_PROTOCOL for this listener (TLS to a plain port or the reverse), "
            "or a firewall"
        )
    return f"{where}: cannot connect: {exc!r}"


def _closed(exc: BaseException) -> bool:
    """The broker hung up on us: a reset, or aiokafka's "Connection ... closed"."""
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return True
    return isinstance(exc, KafkaConnectionError) and "closed" in str(exc)


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host.strip("[]"), int(port)


async def check_connection(s: Settings) -> None:
    """Connect (TLS, SASL) to the bootstrap brokers until one accepts; if none does, raise
    AccessProblem with each one's cause."""
    kwargs = s.kafka_client_kwargs()
    kwargs.pop("bootstrap_servers")
    problems = []
    for address in s.kafka_bootstrap_servers.split(","):
        try:
            host, port = _host_port(address)
        except ValueError:
            problems.append(f"KAFKA_BOOTSTRAP_SERVERS: {address!r} is not host:port")
            continue
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(CONNECT_TIMEOUT_S * 1000), **kwargs),
                CONNECT_TIMEOUT_S,
            )
        except (OSError, KafkaError, asyncio.TimeoutError) as exc:
            problems.append(explain_connection_error(s, address.strip(), exc))
            continue
        conn.close()
        return
    raise AccessProblem("; ".join(problems))


# --- 2. privileges --------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Missing:
    resource: str
    name: str
    operations: tuple[str, ...]

    def __str__(self) -> str:
        return f"{', '.join(self.operations)} on {self.resource} {self.name}"


def required_operations(s: Settings) -> dict[tuple[str, str], set[str]]:
    """(resource type, name) -> the operations a worker uses on it, for the topics and the
    group that exist when it runs: prefixed ACLs are expanded to the product's own topics
    under the prefix. Creating is left out (the topics exist by then)."""
    internal = sorted(
        {spec.name for spec in topic_specs(s) if spec.name.startswith(f"{s.app_id}-")}
        | {f"{s.app_id}{LEADER_TOPIC_SUFFIX}"}
    )
    needed: dict[tuple[str, str], set[str]] = {}
    acl: Acl
    for acl in worker_acls(s, topics_exist=True):
        if acl.resource not in (TOPIC, GROUP):
            continue
        names = [acl.name] if acl.pattern == LITERAL else [n for n in internal if n.startswith(acl.name)]
        for name in names:
            needed.setdefault((acl.resource, name), set()).update(
                op for op in acl.operations if op != "Create"
            )
    return needed


def implied(operations: set[str]) -> set[str]:
    """Kafka's implications: Read, Write, Delete and Alter allow Describe; AlterConfigs
    allows DescribeConfigs."""
    granted = set(operations)
    if granted & {"Read", "Write", "Delete", "Alter"}:
        granted.add("Describe")
    if "AlterConfigs" in granted:
        granted.add("DescribeConfigs")
    return granted


def operations_of(bits: int) -> set[str]:
    return {name for name, code in OPERATION_CODES.items() if bits >= 0 and bits & (1 << code)}


def missing_privileges(
    needed: dict[tuple[str, str], set[str]], authorized: dict[tuple[str, str], set[str]]
) -> list[Missing]:
    """What ``needed`` asks that ``authorized`` does not allow (a resource absent from
    ``authorized`` allows nothing), in a stable order."""
    missing = []
    for (resource, name), operations in sorted(needed.items()):
        granted = implied(authorized.get((resource, name), set()))
        lacking = tuple(op for op in sorted(operations) if op not in granted)
        if lacking:
            missing.append(Missing(resource, name, lacking))
    return missing


async def check_privileges(s: Settings) -> None:
    needed = required_operations(s)
    admin = AIOKafkaAdminClient(**s.kafka_client_kwargs())
    await admin.start()
    try:
        topics = [name for resource, name in needed if resource == TOPIC]
        authorized, unknown = await _topic_operations(admin, topics)
        group_operations = await _group_operations(admin, s.app_id)
    except (IncompatibleBrokerVersion, NotImplementedError) as exc:
        # A broker older than Kafka 2.3, or one that is Kafka-compatible only: it cannot say.
        log.warning("cannot check the ACLs of this cluster: %r", exc)
        return
    finally:
        await admin.close()
    if group_operations is None:
        needed.pop((GROUP, s.app_id), None)
    else:
        authorized[(GROUP, s.app_id)] = group_operations
    # A topic not there yet (faust's leader topic, before faust creates it) says nothing of
    # its ACLs: it is checked when it is used.
    missing = missing_privileges(
        {key: ops for key, ops in needed.items() if key[1] not in unknown or key[0] != TOPIC},
        authorized,
    )
    if missing:
        principal = principal_of(s)
        raise AccessProblem(
            f"{principal} lacks ACLs a worker needs on Kafka at {s.kafka_bootstrap_servers}: "
            + "; ".join(str(m) for m in missing)
            + ". " + ACLS_HINT.format(principal=principal)
        )


def topic_operations(
    topics: list[dict],
) -> tuple[dict[tuple[str, str], set[str]], set[str], dict[str, int]]:
    """A Metadata v8 answer's topics -> the operations allowed on each, the topics that do
    not exist, and the other error codes by topic. Only TOPIC_AUTHORIZATION_FAILED means no
    ACL: any other error says nothing of the topic's ACLs and is reported as itself."""
    found, unknown, errors = {}, set(), {}
    for topic in topics:
        code = topic["error_code"]
        if code == TOPIC_AUTHORIZATION_FAILED:
            found[(TOPIC, topic["name"])] = set()  # not even Describe
        elif code == UNKNOWN_TOPIC_OR_PARTITION:
            unknown.add(topic["name"])
        elif code == 0:
            found[(TOPIC, topic["name"])] = operations_of(topic["topic_authorized_operations"])
        else:
            errors[topic["name"]] = code
    return found, unknown, errors


def error_name(code: int) -> str:
    """``5`` -> ``LeaderNotAvailableError (error 5)``: Kafka's name of an error code."""
    return f"{for_code(code).__name__} (error {code})"


def _retriable(code: int) -> bool:
    return bool(getattr(for_code(code), "retriable", False))


async def _topic_operations(
    admin: AIOKafkaAdminClient, topics: list[str], timeout_s: float = COORDINATOR_TIMEOUT_S
) -> tuple[dict[tuple[str, str], set[str]], set[str]]:
    """The operations allowed on each topic, and the topics that do not exist. A topic the
    broker answers with a passing error (a leader being elected) is asked again; any other
    error, or one that lasts, is an AccessProblem that names it."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        response = await admin._send_request(_AuthorizedMetadataRequest(topics))  # noqa: SLF001
        found, unknown, errors = topic_operations(response.to_object()["topics"])
        if not errors:
            return found, unknown
        passing = all(_retriable(code) for code in errors.values())
        if not passing or asyncio.get_running_loop().time() > deadline:
            raise AccessProblem(
                "Kafka could not say what this worker may do on "
                + ", ".join(f"topic {name}: {error_name(code)}" for name, code in sorted(errors.items()))
                + " (an error of the cluster, not a missing ACL)"
            )
        await asyncio.sleep(0.5)


def described_group(groups: list[dict], group: str) -> dict | None:
    """The entry of ``group`` in a DescribeGroups answer; None when the broker left it out."""
    return next((g for g in groups if g["group"] == group), None)


async def _group_operations(
    admin: AIOKafkaAdminClient, group: str, timeout_s: float = COORDINATOR_TIMEOUT_S
) -> set[str] | None:
    """The operations allowed on ``group``. On a new cluster the group coordinator is not
    there, or still loading, for the first seconds (the offsets topic is being created):
    asked again. None: the group does not exist, and this broker says nothing of its ACLs.
    An answer that leaves the group out is asked again too, then an AccessProblem."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            node = await admin.find_coordinator(group)
            response = await admin._send_request(_AuthorizedDescribeGroups([group]), node)  # noqa: SLF001
            described = described_group(response.to_object()["groups"], group)
            if described is None:
                if asyncio.get_running_loop().time() > deadline:
                    raise AccessProblem(
                        f"Kafka's group coordinator (node {node}) answered DescribeGroups without "
                        f"the group {group}: cannot check this worker's ACLs on it"
                    )
                await asyncio.sleep(0.5)
                continue
            if described["error_code"]:
                raise for_code(described["error_code"])(f"describing group {group}")
            return operations_of(described["authorized_operations"])
        except GroupAuthorizationFailedError:
            return set()  # not even Describe
        except GroupIdNotFound:
            return None
        except KafkaError as exc:
            if not exc.retriable or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


# Metadata v8 (KIP-430): the topics with the operations the principal may do on each.
# aiokafka 0.14 knows versions 0-5 only, which carry no authorized operations.
class _MetadataResponse_v8(Response):
    API_KEY = 3
    API_VERSION = 8
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("brokers", Array(
            ("node_id", Int32), ("host", String("utf-8")), ("port", Int32),
            ("rack", String("utf-8")),
        )),
        ("cluster_id", String("utf-8")),
        ("controller_id", Int32),
        ("topics", Array(
            ("error_code", Int16),
            ("name", String("utf-8")),
            ("is_internal", Boolean),
            ("partitions", Array(
                ("error_code", Int16), ("partition_index", Int32), ("leader_id", Int32),
                ("leader_epoch", Int32), ("replica_nodes", Array(Int32)),
                ("isr_nodes", Array(Int32)), ("offline_replicas", Array(Int32)),
            )),
            ("topic_authorized_operations", Int32),
        )),
        ("cluster_authorized_operations", Int32),
    )


class _MetadataRequest_v8(RequestStruct):
    API_KEY = 3
    API_VERSION = 8
    RESPONSE_TYPE = _MetadataResponse_v8
    SCHEMA = Schema(
        ("topics", Array(String("utf-8"))),
        ("allow_auto_topic_creation", Boolean),
        ("include_cluster_authorized_operations", Boolean),
        ("include_topic_authorized_operations", Boolean),
    )


class _AuthorizedMetadataRequest(Request[_MetadataRequest_v8]):
    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[_MetadataRequest_v8]) -> _MetadataRequest_v8:
        return request_struct_class(self._topics, False, False, True)


# DescribeGroups v3 with the response it is answered by: aiokafka 0.14 parses v3 answers
# with the v2 schema, which drops ``authorized_operations`` (pinned in tests/unit/test_access.py).
class _DescribeGroupsRequest_v3(RequestStruct):
    API_KEY = 15
    API_VERSION = 3
    RESPONSE_TYPE = DescribeGroupsResponse_v3
    SCHEMA = Schema(("groups", Array(String("utf-8"))), ("include_authorized_operations", Boolean))


class _AuthorizedDescribeGroups(Request[_DescribeGroupsRequest_v3]):
    API_KEY = 15

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[_DescribeGroupsRequest_v3]) -> _DescribeGroupsRequest_v3:
        return request_struct_class(self._groups, True)
