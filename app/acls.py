"""The least privileges a worker needs on a cluster whose authorizer denies what no ACL allows.

``worker_acls(settings)`` lists them; ``kafka_acls_commands`` writes them as ``kafka-acls.sh``
command lines, one per resource type and set of operations, for
``faust -A app.main acls --principal User:<name>`` to print.

What each privilege is for (a worker, as the code uses the cluster):
- the input topics (views, profiles, property events): read (the stages' readers, the profiles
  table's reader; faust's group consumer subscribes to them); their own settings read at
  start-up (``max.message.bytes``, against the dead-letter topics' limit);
- the insights topic: written in the views stage's transactions, read back at start-up for
  ``/api/insights``;
- the dead-letter topics: written; their ``max.message.bytes`` read and, if too small, raised;
- every topic named ``<APP_ID>-...`` (changelogs, the views-by-user repartition topic, the
  segment shares, faust's ``__assignor-__leader`` topic): created, read and written;
- the consumer group ``<APP_ID>``: faust's group, and the group whose offsets each partition's
  transaction commits;
- the transactional ids ``<APP_ID>-<stage>-<worker id>``: one transactional producer per stage
  and worker (``app.engine.identity``).
Creating the named topics is needed only while they do not exist (the worker creates what is
missing at start-up); ``topics_exist=True`` leaves that out.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from app.settings import Settings

TOPIC, GROUP, TRANSACTIONAL_ID = "topic", "group", "transactional-id"
LITERAL, PREFIXED = "literal", "prefixed"
# A Kafka principal: its type, a colon, a name (a user name, or a certificate's DN).
_PRINCIPAL = re.compile(r"[A-Za-z][A-Za-z0-9_]*:[^\x00-\x1f\x7f]+")


class AclError(ValueError):
    """Arguments the ACLs cannot be written for; the message says why."""


@dataclass(frozen=True, slots=True)
class Acl:
    """Allow ``operations`` on one resource (or every resource whose name starts with
    ``name`` when ``pattern`` is prefixed)."""

    resource: str
    name: str
    pattern: str
    operations: tuple[str, ...]


def worker_acls(s: Settings, *, topics_exist: bool = False) -> list[Acl]:
    create = () if topics_exist else ("Create",)
    internal = f"{s.app_id}-"
    acls = [
        Acl(TOPIC, s.views_topic, LITERAL, ("Read", "Describe", "DescribeConfigs", *create)),
        Acl(TOPIC, s.profiles_topic, LITERAL, ("Read", "Describe", "DescribeConfigs", *create)),
        Acl(TOPIC, s.property_events_topic, LITERAL, ("Read", "Describe", "DescribeConfigs", *create)),
        Acl(TOPIC, s.insights_topic, LITERAL, ("Read", "Write", "Describe", *create)),
        *(
            Acl(TOPIC, dlq, LITERAL, ("Write", "Describe", "DescribeConfigs", "AlterConfigs", *create))
            for dlq in (s.dlq_views_topic, s.dlq_profiles_topic, s.dlq_property_events_topic)
        ),
        Acl(TOPIC, internal, PREFIXED, ("Read", "Write", "Describe", "Create")),
        Acl(GROUP, s.app_id, LITERAL, ("Read", "Describe")),
        Acl(TRANSACTIONAL_ID, internal, PREFIXED, ("Write", "Describe")),
    ]
    # A named topic under the internal prefix is covered by the prefixed ACL already.
    return [
        acl for acl in acls
        if acl.pattern == PREFIXED or acl.resource != TOPIC or not acl.name.startswith(internal)
    ]


def check_principal(principal: str) -> str:
    if not _PRINCIPAL.fullmatch(principal):
        raise AclError(
            f"principal {principal!r}: expected <type>:<name>, e.g. User:analytics (a SCRAM user) "
            "or User:CN=analytics,O=example (a client certificate's subject)"
        )
    if principal.split(":", 1)[1] == "*":
        raise AclError(f"principal {principal!r} is everyone: name one principal")
    return principal


def kafka_acls_commands(
    principal: str,
    acls: list[Acl],
    bootstrap_servers: str,
    command_config: str | None,
    tool: str = "kafka-acls.sh",
) -> list[str]:
    """One ``kafka-acls.sh --add`` line per resource type, pattern and set of operations:
    resources that need the same operations share a line."""
    check_principal(principal)
    grouped: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for acl in acls:
        grouped.setdefault((acl.resource, acl.pattern, acl.operations), []).append(acl.name)
    head = [tool, "--bootstrap-server", bootstrap_servers]
    if command_config:
        head += ["--command-config", command_config]
    lines = []
    for (resource, pattern, operations), names in grouped.items():
        words = [*head, "--add", "--allow-principal", principal]
        for operation in operations:
            words += ["--operation", operation]
        if pattern != LITERAL:
            words += ["--resource-pattern-type", pattern]
        for name in names:
            words += [f"--{resource}", name]
        lines.append(shlex.join(words))
    return lines
