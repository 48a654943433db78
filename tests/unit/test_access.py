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


# --- answers the broker may give: crafted responses ------------------------------------------

from app import access  # noqa: E402
from app.access import AccessProblem, described_group, error_name, topic_operations  # noqa: E402
from app.acls import TOPIC  # noqa: E402

ALL_OPERATIONS = sum(1 << code for code in OPERATION_CODES.values())


class _Answer:
    def __init__(self, obj: dict) -> None:
        self._obj = obj

    def to_object(self) -> dict:
        return self._obj


class _Admin:
    """An admin client whose requests are answered by ``answer(request)``, in turn."""

    def __init__(self, *answers) -> None:  # noqa: ANN002
        self._answers = list(answers)
        self.requests = 0

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def find_coordinator(self, group: str) -> int:
        return 1

    async def _send_request(self, request, node=None) -> _Answer:  # noqa: ANN001
        answer = self._answers[min(self.requests, len(self._answers) - 1)]
        self.requests += 1
        return _Answer(answer(request) if callable(answer) else answer)


def _topic(name: str, code: int = 0, operations: int = ALL_OPERATIONS) -> dict:
    return {"name": name, "error_code": code, "topic_authorized_operations": operations}


def test_a_group_left_out_of_the_answer_is_a_clear_error_not_stop_iteration():
    admin = _Admin({"groups": []})
    with pytest.raises(AccessProblem, match="answered DescribeGroups without the group pa"):
        asyncio.run(access._group_operations(admin, "pa", timeout_s=0))  # noqa: SLF001


def test_a_group_left_out_once_is_asked_again():
    admin = _Admin(
        {"groups": [{"group": "other", "error_code": 0, "authorized_operations": 0}]},
        {"groups": [{"group": "pa", "error_code": 0, "authorized_operations": 1 << 3}]},
    )
    assert asyncio.run(access._group_operations(admin, "pa", timeout_s=5)) == {"Read"}  # noqa: SLF001
    assert admin.requests == 2
    assert described_group([{"group": "x"}], "pa") is None


def test_only_topic_authorization_failed_means_no_acl():
    found, unknown, errors = topic_operations([
        _topic("denied", 29), _topic("absent", 3), _topic("ok", 0, 1 << 3),
        _topic("broken", 17), _topic("odd", 87),
    ])
    assert found == {(TOPIC, "denied"): set(), (TOPIC, "ok"): {"Read"}}
    assert unknown == {"absent"}
    assert errors == {"broken": 17, "odd": 87}


def test_an_unexpected_topic_error_is_reported_by_its_name():
    admin = _Admin({"topics": [_topic("views"), _topic("broken", 17)]})
    with pytest.raises(AccessProblem) as caught:
        asyncio.run(access._topic_operations(admin, ["views", "broken"], timeout_s=0))  # noqa: SLF001
    message = str(caught.value)
    assert "topic broken: InvalidTopicError (error 17)" in message
    assert "not a missing ACL" in message
    assert admin.requests == 1  # not a passing error: not asked again
    assert error_name(87) == "UnknownError (error 87)"


def test_a_passing_topic_error_is_asked_again_then_named():
    admin = _Admin({"topics": [_topic("views", 5)]}, {"topics": [_topic("views", 0, 1 << 4)]})
    found, _ = asyncio.run(access._topic_operations(admin, ["views"], timeout_s=5))  # noqa: SLF001
    assert found == {(TOPIC, "views"): {"Write"}} and admin.requests == 2
    lasting = _Admin({"topics": [_topic("views", 5)]})
    with pytest.raises(AccessProblem, match=r"topic views: LeaderNotAvailableError \(error 5\)"):
        asyncio.run(access._topic_operations(lasting, ["views"], timeout_s=0))  # noqa: SLF001


def test_check_privileges_never_reads_a_cluster_error_as_missing_acls(monkeypatch):
    """Every privilege granted, one topic answered with an unknown error code: before, that
    topic was left out of the answer and reported as lacking every ACL."""
    s = _sasl()
    broken = sorted(name for resource, name in required_operations(s) if resource == TOPIC)[0]

    def metadata(request) -> dict:  # noqa: ANN001
        return {"topics": [_topic(t, 87 if t == broken else 0) for t in request._topics]}  # noqa: SLF001

    def answer(request) -> dict:  # noqa: ANN001
        if isinstance(request, access._AuthorizedDescribeGroups):  # noqa: SLF001
            return {"groups": [{"group": "pa", "error_code": 0, "authorized_operations": ALL_OPERATIONS}]}
        return metadata(request)

    monkeypatch.setattr(access, "AIOKafkaAdminClient", lambda **kwargs: _Admin(answer))
    with pytest.raises(AccessProblem) as caught:
        asyncio.run(access.check_privileges(s))
    assert f"topic {broken}: UnknownError (error 87)" in str(caught.value)
    assert "lacks ACLs" not in str(caught.value)
