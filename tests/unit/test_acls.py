"""The ACLs of a worker: what they cover, how they are written as kafka-acls lines."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.acls import (
    GROUP,
    PREFIXED,
    TOPIC,
    TRANSACTIONAL_ID,
    AclError,
    check_principal,
    kafka_acls_commands,
    worker_acls,
)
from app.settings import Settings
from app.topics import topic_specs


def _grants(acls, resource, name):
    """Operations the ACLs allow on one resource, prefixed patterns included."""
    ops = set()
    for acl in acls:
        if acl.resource != resource:
            continue
        if acl.name == name or (acl.pattern == PREFIXED and name.startswith(acl.name)):
            ops.update(acl.operations)
    return ops


def test_every_topic_the_worker_creates_is_covered_with_create():
    s = Settings(
        app_id="pa", views_topic="views", profiles_topic="profiles", insights_topic="out",
        property_events_topic="props",
    )
    acls = worker_acls(s)
    for spec in topic_specs(s):
        assert {"Describe", "Create"} <= _grants(acls, TOPIC, spec.name), spec.name
    # faust's leader topic is created by faust under the app id
    assert {"Create", "Read", "Write"} <= _grants(acls, TOPIC, "pa-__assignor-__leader")


def test_least_privileges_per_topic():
    s = Settings(
        app_id="pa", views_topic="views", profiles_topic="profiles", insights_topic="out",
        property_events_topic="props",
    )
    acls = worker_acls(s, topics_exist=True)
    assert _grants(acls, TOPIC, "views") == {"Read", "Describe", "DescribeConfigs"}
    assert _grants(acls, TOPIC, "profiles") == {"Read", "Describe", "DescribeConfigs"}
    assert _grants(acls, TOPIC, "out") == {"Read", "Write", "Describe"}
    assert _grants(acls, TOPIC, "views.dlq") == {"Write", "Describe", "DescribeConfigs", "AlterConfigs"}
    # inputs are never written, and nothing may be deleted
    assert not any({"Write", "Delete", "Alter", "All"} & set(a.operations)
                   for a in acls if a.name in ("views", "profiles"))
    assert _grants(acls, GROUP, "pa") == {"Read", "Describe"}
    assert _grants(acls, GROUP, "pa-other") == set()  # the group is literal, not a prefix
    assert _grants(acls, TRANSACTIONAL_ID, "pa-views-3") == {"Write", "Describe"}
    assert _grants(acls, TOPIC, "someone-else") == set()
    assert not any(a.resource == "cluster" for a in acls)


def test_a_named_topic_under_the_internal_prefix_gets_no_literal_line_of_its_own():
    s = Settings(app_id="bench-1", insights_topic="bench-1-insights")
    names = [a.name for a in worker_acls(s) if a.resource == TOPIC]
    assert "bench-1-insights" not in names
    assert {"Read", "Write"} <= _grants(worker_acls(s), TOPIC, "bench-1-insights")


def test_lines_are_kafka_acls_commands_grouped_by_operations():
    s = Settings(
        app_id="pa", views_topic="views", profiles_topic="profiles", insights_topic="out",
        property_events_topic="props",
    )
    lines = kafka_acls_commands("User:analytics", worker_acls(s), "b:9093", "admin.properties")
    assert len(lines) == 6
    first = shlex.split(lines[0])
    assert first[:7] == ["kafka-acls.sh", "--bootstrap-server", "b:9093", "--command-config",
                         "admin.properties", "--add", "--allow-principal"]
    assert first[7] == "User:analytics"
    assert first.count("--topic") == 3  # the inputs
    assert {"views", "profiles", "props"} <= set(first)
    tx = next(shlex.split(line) for line in lines if "--transactional-id" in line)
    assert tx[tx.index("--resource-pattern-type") + 1] == "prefixed"
    assert tx[tx.index("--transactional-id") + 1] == "pa-"
    assert not any("--deny-principal" in line or "--remove" in line for line in lines)


def test_without_command_config_the_option_is_left_out():
    lines = kafka_acls_commands("User:a", worker_acls(Settings()), "b:1", None)
    assert all("--command-config" not in line for line in lines)


@given(st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t))
def test_any_principal_name_is_quoted_as_one_word(name):
    principal = f"User:{name}"
    try:
        check_principal(principal)
    except AclError:
        return  # control characters, or everyone
    for line in kafka_acls_commands(principal, worker_acls(Settings()), "b:1", "a b.properties"):
        words = shlex.split(line)
        assert words[words.index("--allow-principal") + 1] == principal
        assert words[words.index("--command-config") + 1] == "a b.properties"


@pytest.mark.parametrize("bad", ["analytics", ":x", "User:", "User:*", "User:a\nb", "1User:a"])
def test_bad_principals_are_refused_with_the_reason(bad):
    with pytest.raises(AclError, match="principal"):
        check_principal(bad)


def test_certificate_subjects_are_principals_too():
    assert check_principal("User:CN=analytics,O=Example Corp") == "User:CN=analytics,O=Example Corp"
