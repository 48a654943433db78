"""ListTransactions v0 and DescribeTransactions v0 on the wire (app.engine.kip447.protocol).

As for the KIP-447 requests: the bytes Kafka's own Java message classes write for the same
values (kafka-clients 4.4.0, ``kip447_vectors/Kip664Vectors.java`` prints them), and round
trips over arbitrary values.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine.kip447.protocol import (
    DescribeTransactions,
    DescribeTransactionsRequest_v0,
    DescribeTransactionsResponse_v0,
    ListTransactions,
    ListTransactionsRequest_v0,
    ListTransactionsResponse_v0,
    UnsupportedByBroker,
)

KAFKA_4_4 = {66: (0, 2), 65: (0, 0)}  # the versions a Kafka 4.4 broker announces

# Written by kafka-clients 4.4.0 (Kip664Vectors.java), for the values in the tests below.
JAVA = {
    "list_transactions_request_v0": "02084f6e676f696e67030000000000001092000000000000000700",
    "list_transactions_request_v0_all": "010100",
    "list_transactions_response_v0": (
        "0000000300000209536c656570696e6702176170702d76696577732d3031323334353637383961620000"
        "000000001092084f6e676f696e670000"
    ),
    "describe_transactions_request_v0": (
        "03176170702d76696577732d30313233343536373839616203c3a900"
    ),
    "describe_transactions_response_v0": (
        "00000000030000176170702d76696577732d303132333435363738396162084f6e676f696e6700002710"
        "0000019af232b27b0000000000001092000503146170702d76696577732d6368616e67656c6f67030000"
        "00030000000b00135f5f636f6e73756d65725f6f666673657473020000001b0000006905676f6e650100"
        "000000ffffffffffffffffffffffffffffffffffff010000"
    ),
}


def test_requests_are_the_bytes_the_java_client_writes():
    listing = ListTransactions(["Ongoing"], [4242, 7]).prepare(KAFKA_4_4)
    assert listing.encode().hex() == JAVA["list_transactions_request_v0"]
    assert ListTransactions().prepare(KAFKA_4_4).encode().hex() == JAVA[
        "list_transactions_request_v0_all"
    ]
    describe = DescribeTransactions(["app-views-0123456789ab", "é"]).prepare(KAFKA_4_4)
    assert describe.encode().hex() == JAVA["describe_transactions_request_v0"]


def test_answers_the_java_client_writes_decode():
    listing = ListTransactionsResponse_v0.decode(
        bytes.fromhex(JAVA["list_transactions_response_v0"])
    )
    assert (listing.throttle_time_ms, listing.error_code) == (3, 0)
    assert listing.unknown_state_filters == ["Sleeping"]
    assert listing.transaction_states == [("app-views-0123456789ab", 4242, "Ongoing", {})]

    described = DescribeTransactionsResponse_v0.decode(
        bytes.fromhex(JAVA["describe_transactions_response_v0"])
    )
    assert described.transaction_states == [
        (0, "app-views-0123456789ab", "Ongoing", 10_000, 1765000000123, 4242, 5,
         [("app-views-changelog", [3, 11], {}), ("__consumer_offsets", [27], {})], {}),
        (105, "gone", "", 0, -1, -1, -1, [], {}),
    ]


def test_the_request_header_is_the_flexible_one():
    request = ListTransactions(["Ongoing"]).prepare(KAFKA_4_4)
    header = request.build_request_header(correlation_id=9, client_id="c").encode()
    assert header == bytes.fromhex("0042000000000009") + b"\x00\x01c\x00"


def test_a_broker_without_the_apis_is_told_in_words():
    with pytest.raises(UnsupportedByBroker, match=r"ListTransactions v0 .* does not know the API"):
        ListTransactions().prepare({})
    with pytest.raises(UnsupportedByBroker, match=r"DescribeTransactions v0 .* supports v1-v2"):
        DescribeTransactions(["x"]).prepare({65: (1, 2)})


# --- round trips over arbitrary values -----------------------------------------------------

names = st.text(max_size=40)
int16 = st.integers(-(2**15), 2**15 - 1)
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)


@given(states=st.lists(names, max_size=5), producers=st.lists(int64, max_size=5))
def test_list_transactions_request_round_trip(states, producers):
    encoded = ListTransactions(states, producers).prepare(KAFKA_4_4).encode()
    decoded = ListTransactionsRequest_v0.decode(encoded)
    assert (decoded.state_filters, decoded.producer_id_filters) == (states, producers)


@given(
    throttle=int32, error_code=int16, unknown=st.lists(names, max_size=3),
    states=st.lists(st.tuples(names, int64, names), max_size=5),
)
def test_list_transactions_response_round_trip(throttle, error_code, unknown, states):
    rows = [(*row, {}) for row in states]
    encoded = ListTransactionsResponse_v0(throttle, error_code, unknown, rows, {}).encode()
    decoded = ListTransactionsResponse_v0.decode(encoded)
    assert (decoded.throttle_time_ms, decoded.error_code) == (throttle, error_code)
    assert (decoded.unknown_state_filters, decoded.transaction_states) == (unknown, rows)


@given(ids=st.lists(names, max_size=5))
def test_describe_transactions_request_round_trip(ids):
    encoded = DescribeTransactions(ids).prepare(KAFKA_4_4).encode()
    assert DescribeTransactionsRequest_v0.decode(encoded).transactional_ids == ids


@given(
    throttle=int32,
    states=st.lists(
        st.tuples(int16, names, names, int32, int64, int64, int16,
                  st.lists(st.tuples(names, st.lists(int32, max_size=4)), max_size=3)),
        max_size=4,
    ),
)
def test_describe_transactions_response_round_trip(throttle, states):
    rows = [
        (*head, [(topic, partitions, {}) for topic, partitions in topics], {})
        for *head, topics in states
    ]
    encoded = DescribeTransactionsResponse_v0(throttle, rows, {}).encode()
    decoded = DescribeTransactionsResponse_v0.decode(encoded)
    assert (decoded.throttle_time_ms, decoded.transaction_states) == (throttle, rows)
