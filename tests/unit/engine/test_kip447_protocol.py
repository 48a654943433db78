"""TxnOffsetCommit v3 and OffsetFetch v7 on the wire (app.engine.kip447.protocol).

Three kinds of evidence: a vector written out field by field from Kafka's JSON schemas, the
bytes Kafka's own Java message classes write for the same values (kafka-clients 4.4.0,
``kip447_vectors/JavaVectors.java`` prints them), and round trips over arbitrary values.
"""

from __future__ import annotations

import struct

import pytest
from aiokafka.errors import IncompatibleBrokerVersion
from hypothesis import given
from hypothesis import strategies as st

from app.engine.kip447.protocol import (
    OffsetFetchRequest_v7,
    OffsetFetchResponse_v7,
    StableOffsetFetch,
    TxnOffsetCommitRequest_v3,
    TxnOffsetCommitResponse_v3,
    TxnOffsetCommitWithGeneration,
    UnsupportedByBroker,
)

KAFKA_4_4 = {28: (0, 6), 9: (1, 10)}  # the versions a Kafka 4.4 broker announces

# Written by kafka-clients 4.4.0 (JavaVectors.java), for the values in the tests below.
JAVA = {
    "txn_offset_commit_request_v3": (
        "0d6170702d76696577732d773104617070000000000000109200070000000c0d66617573742d312d35663063"
        "00030f70726f70657274792e7669657773030000000000000000000003e8ffffffff010000000005000001"
        "0000000000ffffffff0000000ac3a92e6576656e747302000000020000000000000000ffffffff026d000000"
    ),
    "txn_offset_commit_request_v3_static": (
        "0d6170702d76696577732d773104617070000000000000109200070000000c0d66617573742d312d35663063"
        "09776f726b65722d310100"
    ),
    "txn_offset_commit_response_v3": (
        "00000005020f70726f70657274792e76696577730300000000000000000000050016000000"
    ),
    "txn_offset_commit_response_v3_tagged": (
        "00000005020f70726f70657274792e766965777303000000000000000000000500160000010703010203"
    ),
    "offset_fetch_request_v7": (
        "04617070020f70726f70657274792e76696577730400000000000000010000000b000100"
    ),
    "offset_fetch_request_v7_all": "04617070000000",
    "offset_fetch_response_v7": (
        "00000000020f70726f70657274792e7669657773030000000000000000000003e8000000030100000000"
        "000001ffffffffffffffffffffffff0000580000000000"
    ),
}

COMMIT_TOPICS = [
    ("property.views", [(0, 1000, ""), (5, 1 << 40, None)]),
    ("é.events", [(2, 0, "m")]),
]


def _commit(group_instance_id: str | None = None, topics=COMMIT_TOPICS):  # noqa: ANN001, ANN202
    return TxnOffsetCommitWithGeneration(
        "app-views-w1", "app", 4242, 7, 12, "faust-1-5f0c", group_instance_id, topics
    )


def test_txn_offset_commit_v3_bytes_follow_the_schema_field_by_field():
    """TxnOffsetCommitRequest.json at version 3 (flexible: compact strings and arrays are
    length + 1 as an unsigned varint, null is 0; each struct ends in a tagged-field count)."""
    request = TxnOffsetCommitWithGeneration("t", "g", 1, 2, 3, "m", None, [("x", [(0, 5, "")])])
    expected = b"".join([
        b"\x02t",  # TransactionalId
        b"\x02g",  # GroupId
        struct.pack(">q", 1),  # ProducerId
        struct.pack(">h", 2),  # ProducerEpoch
        struct.pack(">i", 3),  # GenerationIdOrMemberEpoch (3+)
        b"\x02m",  # MemberId (3+)
        b"\x00",  # GroupInstanceId (3+, nullable): null
        b"\x02",  # Topics: one
        b"\x02x",  # .Name
        b"\x02",  # .Partitions: one
        struct.pack(">i", 0),  # ..PartitionIndex
        struct.pack(">q", 5),  # ..CommittedOffset
        struct.pack(">i", -1),  # ..CommittedLeaderEpoch (2+): unknown
        b"\x01",  # ..CommittedMetadata: ""
        b"\x00",  # ..tagged fields
        b"\x00",  # .tagged fields
        b"\x00",  # tagged fields
    ])
    assert request.prepare(KAFKA_4_4).encode() == expected


def test_offset_fetch_v7_bytes_follow_the_schema_field_by_field():
    expected = b"".join([
        b"\x02g",  # GroupId
        b"\x02",  # Topics: one
        b"\x02x",  # .Name
        b"\x03" + struct.pack(">ii", 0, 3),  # .PartitionIndexes: two
        b"\x00",  # .tagged fields
        b"\x01",  # RequireStable (7+)
        b"\x00",  # tagged fields
    ])
    assert StableOffsetFetch("g", [("x", [0, 3])]).prepare(KAFKA_4_4).encode() == expected


def test_the_request_header_is_the_flexible_one():
    """Flexible versions use request header v2: client id as a plain string, then tags."""
    header = _commit().prepare(KAFKA_4_4).build_request_header(correlation_id=9, client_id="c")
    assert header.encode() == struct.pack(">hhih", 28, 3, 9, 1) + b"c" + b"\x00"
    fetch = StableOffsetFetch("g", None).prepare(KAFKA_4_4)
    assert fetch.build_request_header(correlation_id=9, client_id="c").encode()[:4] == struct.pack(
        ">hh", 9, 7
    )


def test_requests_are_the_bytes_the_java_client_writes():
    assert _commit().prepare(KAFKA_4_4).encode().hex() == JAVA["txn_offset_commit_request_v3"]
    static = _commit("worker-1", topics=[]).prepare(KAFKA_4_4)
    assert static.encode().hex() == JAVA["txn_offset_commit_request_v3_static"]
    fetch = StableOffsetFetch("app", [("property.views", [0, 1, 11])], require_stable=True)
    assert fetch.prepare(KAFKA_4_4).encode().hex() == JAVA["offset_fetch_request_v7"]
    every = StableOffsetFetch("app", None, require_stable=False)
    assert every.prepare(KAFKA_4_4).encode().hex() == JAVA["offset_fetch_request_v7_all"]


def test_answers_the_java_client_writes_decode():
    commit = TxnOffsetCommitResponse_v3.decode(bytes.fromhex(JAVA["txn_offset_commit_response_v3"]))
    assert commit.throttle_time_ms == 5
    assert commit.topics == [("property.views", [(0, 0, {}), (5, 22, {})], {})]
    # A tagged field this version does not define is skipped, whatever its content.
    tagged = TxnOffsetCommitResponse_v3.decode(
        bytes.fromhex(JAVA["txn_offset_commit_response_v3_tagged"])
    )
    assert tagged.topics == commit.topics and tagged.tags == {7: b"\x01\x02\x03"}

    fetch = OffsetFetchResponse_v7.decode(bytes.fromhex(JAVA["offset_fetch_response_v7"]))
    assert fetch.error_code == 0
    assert fetch.topics == [
        ("property.views", [(0, 1000, 3, "", 0, {}), (1, -1, -1, None, 88, {})], {})
    ]


def test_a_broker_without_the_version_is_told_in_words():
    with pytest.raises(UnsupportedByBroker, match=r"TxnOffsetCommit v3 is needed .* v0-v2"):
        _commit().prepare({28: (0, 2)})
    with pytest.raises(UnsupportedByBroker, match=r"OffsetFetch v7 .* does not know the API"):
        StableOffsetFetch("g", None).prepare({})
    with pytest.raises(UnsupportedByBroker, match=r"OffsetFetch v7 .* supports v8-v10"):
        StableOffsetFetch("g", None).prepare({9: (8, 10)})
    # aiokafka's handlers re-raise IncompatibleBrokerVersion instead of retrying it.
    assert issubclass(UnsupportedByBroker, IncompatibleBrokerVersion)


# --- round trips over arbitrary values -----------------------------------------------------

names = st.text(min_size=0, max_size=40)
nullable = st.none() | names
int16 = st.integers(-(2**15), 2**15 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
no_tags = st.just({})


@given(
    transactional_id=names, group_id=names, producer_id=int64, producer_epoch=int16,
    generation_id=int32, member_id=names, group_instance_id=nullable,
    topics=st.lists(st.tuples(names, st.lists(st.tuples(int32, int64, nullable), max_size=5)),
                    max_size=5),
)
def test_txn_offset_commit_request_round_trip(
    transactional_id, group_id, producer_id, producer_epoch, generation_id, member_id,
    group_instance_id, topics,
):
    request = TxnOffsetCommitWithGeneration(
        transactional_id, group_id, producer_id, producer_epoch, generation_id, member_id,
        group_instance_id, topics,
    ).prepare(KAFKA_4_4)
    decoded = TxnOffsetCommitRequest_v3.decode(request.encode())
    assert decoded == request
    assert decoded.group_instance_id == group_instance_id
    sent = [(t, [(p, o, m) for p, o, _e, m, _t in parts]) for t, parts, _ in decoded.topics]
    assert sent == topics


@given(
    throttle=int32,
    topics=st.lists(st.tuples(names, st.lists(st.tuples(int32, int16, no_tags), max_size=5),
                              no_tags), max_size=5),
)
def test_txn_offset_commit_response_round_trip(throttle, topics):
    response = TxnOffsetCommitResponse_v3(throttle, topics, {})
    assert TxnOffsetCommitResponse_v3.decode(response.encode()) == response


@given(
    group_id=names,
    topics=st.none() | st.lists(st.tuples(names, st.lists(int32, max_size=8)), max_size=5),
    require_stable=st.booleans(),
)
def test_offset_fetch_request_round_trip(group_id, topics, require_stable):
    request = StableOffsetFetch(group_id, topics, require_stable).prepare(KAFKA_4_4)
    decoded = OffsetFetchRequest_v7.decode(request.encode())
    assert decoded == request
    assert decoded.require_stable is require_stable
    if topics is None:
        assert decoded.topics is None
    else:
        assert [(t, parts) for t, parts, _ in decoded.topics] == topics


@given(
    throttle=int32, error_code=int16,
    topics=st.lists(st.tuples(
        names,
        st.lists(st.tuples(int32, int64, int32, nullable, int16, no_tags), max_size=5),
        no_tags,
    ), max_size=5),
)
def test_offset_fetch_response_round_trip(throttle, error_code, topics):
    response = OffsetFetchResponse_v7(throttle, topics, error_code, {})
    assert OffsetFetchResponse_v7.decode(response.encode()) == response
