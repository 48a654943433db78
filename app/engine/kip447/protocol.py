"""The two KIP-447 requests aiokafka 0.14 lacks, as aiokafka's own protocol classes (and, at
the end, the two KIP-664 ones ``app.engine.takeover`` uses).

- TxnOffsetCommit v3 (API key 28): a transaction's offset commit that carries the consumer
  group's generation, member id and group instance id, so that the group coordinator refuses
  it from a member of an older generation (ILLEGAL_GENERATION), a member no longer in the
  group (UNKNOWN_MEMBER_ID) or a static member replaced by another (FENCED_INSTANCE_ID).
  aiokafka sends v0, which the coordinator accepts from anyone.
- OffsetFetch v7 (API key 9) with ``require_stable``: the coordinator answers
  UNSTABLE_OFFSET_COMMIT for a partition while a transaction that commits its offset is
  still open, instead of the offset committed before it. aiokafka sends up to v3.

Both are flexible versions (KIP-482): compact strings and arrays, and a tagged-field buffer
after every struct. The schemas follow Kafka's ``TxnOffsetCommitRequest.json``,
``TxnOffsetCommitResponse.json``, ``OffsetFetchRequest.json`` and ``OffsetFetchResponse.json``
(kafka-clients 4.4.0), field by field. aiokafka negotiates versions per connection: each
``Request`` here builds the one version it defines and says so in words when the broker at
the other end does not know it (``UnsupportedByBroker``), instead of aiokafka's "has not yet
been added".

Nothing here depends on the rest of the product: it is meant to be proposed upstream as it
is (``aiokafka.protocol.transaction`` and ``aiokafka.protocol.commit``).
"""

from __future__ import annotations

from typing import ClassVar

from aiokafka.errors import IncompatibleBrokerVersion
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Int64,
    Schema,
    TaggedFields,
)

TXN_OFFSET_COMMIT_KEY = 28
OFFSET_FETCH_KEY = 9
# CommittedLeaderEpoch: -1 says "unknown", as the Java producer sends when a record's epoch
# is not known; the coordinator then skips the epoch check.
NO_LEADER_EPOCH = -1
NO_GENERATION = -1  # JoinGroupRequest.UNKNOWN_GENERATION_ID
NO_MEMBER_ID = ""  # JoinGroupRequest.UNKNOWN_MEMBER_ID


class UnsupportedByBroker(IncompatibleBrokerVersion):
    """The broker does not know the version of the request this module needs."""

    def __init__(
        self, api: str, version: int, what: str, broker: tuple[int, int] | None,
        where: str = "the broker", since: str = "2.5",
    ) -> None:
        known = "does not know the API" if broker is None else f"supports v{broker[0]}-v{broker[1]}"
        super().__init__(
            f"{api} v{version} is needed for {what}, and {where} {known}; "
            f"Kafka {since} or later has it"
        )
        self.api = api
        self.version = version
        self.broker = broker


def version_problem(
    api: str, struct: type[RequestStruct], versions: dict[int, tuple[int, int]], what: str,
    where: str = "the broker", since: str = "2.5",
) -> UnsupportedByBroker | None:
    """What is wrong when a broker announcing ``versions`` cannot take ``struct``, or None;
    ``since``: the first Kafka release that has it."""
    broker = versions.get(struct.API_KEY)
    if broker is None or not broker[0] <= struct.API_VERSION <= broker[1]:
        return UnsupportedByBroker(api, struct.API_VERSION, what, broker, where, since)
    return None


# --- TxnOffsetCommit v3 ------------------------------------------------------------------

class TxnOffsetCommitResponse_v3(Response):
    API_KEY = TXN_OFFSET_COMMIT_KEY
    API_VERSION = 3
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("error_code", Int16),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitRequest_v3(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = TXN_OFFSET_COMMIT_KEY
    API_VERSION = 3
    RESPONSE_TYPE = TxnOffsetCommitResponse_v3
    SCHEMA = Schema(
        ("transactional_id", CompactString("utf-8")),
        ("group_id", CompactString("utf-8")),
        ("producer_id", Int64),
        ("producer_epoch", Int16),
        ("generation_id", Int32),
        ("member_id", CompactString("utf-8")),
        ("group_instance_id", CompactString("utf-8")),  # nullable
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("committed_offset", Int64),
                ("committed_leader_epoch", Int32),
                ("committed_metadata", CompactString("utf-8")),  # nullable
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class TxnOffsetCommitWithGeneration(Request[TxnOffsetCommitRequest_v3]):
    """TxnOffsetCommit with the consumer group's metadata (KIP-447).

    ``topics``: ``[(topic, [(partition, offset, metadata), ...]), ...]``, as aiokafka's
    ``TxnOffsetCommitRequest`` takes them.
    """

    API_KEY = TXN_OFFSET_COMMIT_KEY
    API_NAME: ClassVar[str] = "TxnOffsetCommit"
    WHAT: ClassVar[str] = "offset commits fenced by the consumer group's generation (KIP-447)"

    def __init__(
        self,
        transactional_id: str,
        group_id: str,
        producer_id: int,
        producer_epoch: int,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        topics: list[tuple[str, list[tuple[int, int, str | None]]]],
    ) -> None:
        self._transactional_id = transactional_id
        self._group_id = group_id
        self._producer_id = producer_id
        self._producer_epoch = producer_epoch
        self._generation_id = generation_id
        self._member_id = member_id
        self._group_instance_id = group_instance_id
        self._topics = topics

    def prepare(self, versions: dict[int, tuple[int, int]]) -> TxnOffsetCommitRequest_v3:
        problem = version_problem(self.API_NAME, TxnOffsetCommitRequest_v3, versions, self.WHAT)
        if problem is not None:
            raise problem
        return self.build(TxnOffsetCommitRequest_v3)

    def build(
        self, request_struct_class: type[TxnOffsetCommitRequest_v3]
    ) -> TxnOffsetCommitRequest_v3:
        return request_struct_class(
            self._transactional_id,
            self._group_id,
            self._producer_id,
            self._producer_epoch,
            self._generation_id,
            self._member_id,
            self._group_instance_id,
            [
                (
                    topic,
                    [
                        (partition, offset, NO_LEADER_EPOCH, metadata, {})
                        for partition, offset, metadata in partitions
                    ],
                    {},
                )
                for topic, partitions in self._topics
            ],
            {},
        )


# --- OffsetFetch v7 ----------------------------------------------------------------------

class OffsetFetchResponse_v7(Response):
    API_KEY = OFFSET_FETCH_KEY
    API_VERSION = 7
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", CompactArray(
            ("name", CompactString("utf-8")),
            ("partitions", CompactArray(
                ("partition_index", Int32),
                ("committed_offset", Int64),
                ("committed_leader_epoch", Int32),
                ("metadata", CompactString("utf-8")),  # nullable
                ("error_code", Int16),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("error_code", Int16),
        ("tags", TaggedFields),
    )


class OffsetFetchRequest_v7(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = OFFSET_FETCH_KEY
    API_VERSION = 7
    RESPONSE_TYPE = OffsetFetchResponse_v7
    SCHEMA = Schema(
        ("group_id", CompactString("utf-8")),
        ("topics", CompactArray(  # nullable: null asks for every partition of the group
            ("name", CompactString("utf-8")),
            ("partition_indexes", CompactArray(Int32)),
            ("tags", TaggedFields),
        )),
        ("require_stable", Boolean),
        ("tags", TaggedFields),
    )


class StableOffsetFetch(Request[OffsetFetchRequest_v7]):
    """OffsetFetch v7; ``topics``: ``[(topic, [partition, ...]), ...]``, or None for every
    partition the group has an offset for."""

    API_KEY = OFFSET_FETCH_KEY
    API_NAME: ClassVar[str] = "OffsetFetch"
    WHAT: ClassVar[str] = "fetching committed offsets with require_stable (KIP-447)"

    def __init__(
        self,
        group_id: str,
        topics: list[tuple[str, list[int]]] | None,
        require_stable: bool = True,
    ) -> None:
        self._group_id = group_id
        self._topics = topics
        self._require_stable = require_stable

    def prepare(self, versions: dict[int, tuple[int, int]]) -> OffsetFetchRequest_v7:
        problem = version_problem(self.API_NAME, OffsetFetchRequest_v7, versions, self.WHAT)
        if problem is not None:
            raise problem
        return self.build(OffsetFetchRequest_v7)

    def build(self, request_struct_class: type[OffsetFetchRequest_v7]) -> OffsetFetchRequest_v7:
        topics = None if self._topics is None else [
            (topic, list(partitions), {}) for topic, partitions in self._topics
        ]
        return request_struct_class(self._group_id, topics, self._require_stable, {})


# --- ListTransactions v0 and DescribeTransactions v0 (KIP-664) ----------------------------
# What a new owner of a partition asks to find the open transaction of a dead previous owner
# (``app.engine.takeover``). Both are flexible from v0 (Kafka 3.0). The schemas follow
# ``ListTransactionsRequest.json``, ``ListTransactionsResponse.json``,
# ``DescribeTransactionsRequest.json`` and ``DescribeTransactionsResponse.json``
# (kafka-clients 4.4.0). aiokafka 0.14 has neither (``aiokafka.protocol.transaction`` upstream).

LIST_TRANSACTIONS_KEY = 66
DESCRIBE_TRANSACTIONS_KEY = 65


class ListTransactionsResponse_v0(Response):
    API_KEY = LIST_TRANSACTIONS_KEY
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("error_code", Int16),
        ("unknown_state_filters", CompactArray(CompactString("utf-8"))),
        ("transaction_states", CompactArray(
            ("transactional_id", CompactString("utf-8")),
            ("producer_id", Int64),
            ("transaction_state", CompactString("utf-8")),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class ListTransactionsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = LIST_TRANSACTIONS_KEY
    API_VERSION = 0
    RESPONSE_TYPE = ListTransactionsResponse_v0
    SCHEMA = Schema(
        ("state_filters", CompactArray(CompactString("utf-8"))),
        ("producer_id_filters", CompactArray(Int64)),
        ("tags", TaggedFields),
    )


class ListTransactions(Request[ListTransactionsRequest_v0]):
    """ListTransactions v0: the transactions one broker coordinates, in any of
    ``state_filters`` (e.g. ``["Ongoing"]``; empty: every state) and of any of
    ``producer_id_filters`` (empty: every producer). Ask every broker for all of them."""

    API_KEY = LIST_TRANSACTIONS_KEY
    API_NAME: ClassVar[str] = "ListTransactions"
    WHAT: ClassVar[str] = "listing open transactions (KIP-664)"

    def __init__(
        self, state_filters: list[str] | None = None, producer_id_filters: list[int] | None = None
    ) -> None:
        self._state_filters = list(state_filters or [])
        self._producer_id_filters = list(producer_id_filters or [])

    def prepare(self, versions: dict[int, tuple[int, int]]) -> ListTransactionsRequest_v0:
        problem = version_problem(
            self.API_NAME, ListTransactionsRequest_v0, versions, self.WHAT, since="3.0"
        )
        if problem is not None:
            raise problem
        return self.build(ListTransactionsRequest_v0)

    def build(
        self, request_struct_class: type[ListTransactionsRequest_v0]
    ) -> ListTransactionsRequest_v0:
        return request_struct_class(self._state_filters, self._producer_id_filters, {})


class DescribeTransactionsResponse_v0(Response):
    API_KEY = DESCRIBE_TRANSACTIONS_KEY
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("transaction_states", CompactArray(
            ("error_code", Int16),
            ("transactional_id", CompactString("utf-8")),
            ("transaction_state", CompactString("utf-8")),
            ("transaction_timeout_ms", Int32),
            ("transaction_start_time_ms", Int64),
            ("producer_id", Int64),
            ("producer_epoch", Int16),
            ("topics", CompactArray(
                ("topic", CompactString("utf-8")),
                ("partitions", CompactArray(Int32)),
                ("tags", TaggedFields),
            )),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class DescribeTransactionsRequest_v0(RequestStruct):
    FLEXIBLE_VERSION = True
    API_KEY = DESCRIBE_TRANSACTIONS_KEY
    API_VERSION = 0
    RESPONSE_TYPE = DescribeTransactionsResponse_v0
    SCHEMA = Schema(
        ("transactional_ids", CompactArray(CompactString("utf-8"))),
        ("tags", TaggedFields),
    )


class DescribeTransactions(Request[DescribeTransactionsRequest_v0]):
    """DescribeTransactions v0: state, timeout, start time, producer and partitions of each
    of ``transactional_ids``, asked of their transaction coordinator."""

    API_KEY = DESCRIBE_TRANSACTIONS_KEY
    API_NAME: ClassVar[str] = "DescribeTransactions"
    WHAT: ClassVar[str] = "describing open transactions (KIP-664)"

    def __init__(self, transactional_ids: list[str]) -> None:
        self._transactional_ids = list(transactional_ids)

    def prepare(self, versions: dict[int, tuple[int, int]]) -> DescribeTransactionsRequest_v0:
        problem = version_problem(
            self.API_NAME, DescribeTransactionsRequest_v0, versions, self.WHAT, since="3.0"
        )
        if problem is not None:
            raise problem
        return self.build(DescribeTransactionsRequest_v0)

    def build(
        self, request_struct_class: type[DescribeTransactionsRequest_v0]
    ) -> DescribeTransactionsRequest_v0:
        return request_struct_class(self._transactional_ids, {})
