"""The start-up access check's pure parts: which privileges a worker needs, which it lacks,
and what a connection failure is explained as."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from aiokafka.errors import KafkaConnectionError, SaslAuthenticationFailed
from aiokafka.protocol.admin import DescribeGroupsRequest_v3, DescribeGroupsResponse_v2

from app.access import (
    OPERATION_CODES,
    explain_connection_error,
    implied,
    missing_privileges,
    operations_of,
    principal_of,
    required_operations,
)
from app.settings import Settings


def _sasl(**overrides) -> Settings:
    values = dict(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
                  kafka_sasl_username="analytics", kafka_sasl_password="pw", app_id="pa",
                  views_topic="views", profiles_topic="profiles", insights_topic="out")
    return Settings(**(values | overrides))


def test_required_operations_expand_the_prefix_to_the_product_topics():
    needed = required_operations(_sasl())
    assert needed[("group", "pa")] == {"Read", "Describe"}
    assert needed[("topic", "views")] == {"Read", "Describe", "DescribeConfigs"}
    assert needed[("topic", "pa-views-state-changelog")] == {"Read", "Write", "Describe"}
    assert needed[("topic", "pa-__assignor-__leader")] == {"Read", "Write", "Describe"}
    assert all("Create" not in ops for ops in needed.values())  # the topics exist by then


def test_operations_bits_decode_and_unknown_is_nothing():
    bits = (1 << OPERATION_CODES["Read"]) | (1 << OPERATION_CODES["DescribeConfigs"])
    assert operations_of(bits) == {"Read", "DescribeConfigs"}
    assert operations_of(-2147483648) == set()  # "not requested" in Kafka's answers


def test_implied_operations_follow_kafka():
    assert implied({"Read"}) == {"Read", "Describe"}
    assert implied({"AlterConfigs"}) == {"AlterConfigs", "DescribeConfigs"}
    assert implied({"Create"}) == {"Create"}


def test_missing_privileges_lists_only_what_is_lacking():
    needed = {("group", "pa"): {"Read", "Describe"}, ("topic", "views"): {"Read", "DescribeConfigs"}}
    authorized = {("topic", "views"): {"Read", "DescribeConfigs"}}
    missing = missing_privileges(needed, authorized)
    assert [str(m) for m in missing] == ["Describe, Read on group pa"]
    authorized[("group", "pa")] = {"Read"}  # Describe implied
    assert missing_privileges(needed, authorized) == []


def test_principal_as_the_broker_sees_it():
    assert principal_of(_sasl()) == "User:analytics"
    assert principal_of(Settings()) == "User:ANONYMOUS"


def _verify_error() -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, "certificate verify failed")
    exc.verify_message = "self-signed certificate in certificate chain"
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (SaslAuthenticationFailed("invalid credentials"), "wrong KAFKA_SASL_PASSWORD"),
        (_verify_error(), "set KAFKA_SSL_CAFILE"),
        (KafkaConnectionError("Connection at h:1 closed"), "KAFKA_SECURITY_PROTOCOL"),
        (ConnectionRefusedError(111, "refused"), "no broker listens there"),
        (asyncio.TimeoutError(), "no answer within"),
    ],
)
def test_connection_errors_name_their_cause_and_setting(exc, expected):
    message = explain_connection_error(_sasl(), "h:1", exc)
    assert expected in message
    assert message.startswith("Kafka at h:1 (SASL_PLAINTEXT)")
    assert "pw" not in message.replace("KAFKA_SASL_PASSWORD", "")  # never the password


def test_sasl_failure_names_the_user_and_mechanism():
    message = explain_connection_error(_sasl(), "h:1", SaslAuthenticationFailed("x"))
    assert "'analytics'" in message and "SCRAM-SHA-512" in message


def test_upstream_describe_groups_v3_is_parsed_as_v2():
    """aiokafka 0.14 reads DescribeGroups v3 answers with the v2 schema, losing the authorized
    operations; app.access sends its own v3 request. When this fails, upstream fixed it: use
    ``describe_consumer_groups(include_authorized_operations=True)`` instead."""
    assert DescribeGroupsRequest_v3.RESPONSE_TYPE is DescribeGroupsResponse_v2
