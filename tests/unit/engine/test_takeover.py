"""Fencing a dead owner's expired transaction when a partition opens (app.engine.takeover),
against a scripted cluster: which transactions are fenced, which never are, and that an
opening waits as before whenever the look-up cannot be made."""

from __future__ import annotations

import logging
import re
import time

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import ConcurrentTransactions, TransactionalIdAuthorizationFailed
from hypothesis import given
from hypothesis import strategies as st

from app.engine import takeover
from app.engine.identity import stage_transactional_ids, transactional_id
from app.engine.kip447 import UnstableOffsets
from app.engine.kip447.protocol import (
    DescribeTransactionsResponse_v0,
    ListTransactionsResponse_v0,
    OffsetFetchResponse_v7,
)
from app.engine.takeover import OpenTransaction, candidates, open_transactions, to_fence

SOURCE = TopicPartition("app-views", 3)
CHANGELOG = TopicPartition("app-views-changelog", 3)
STAGE = stage_transactional_ids("app", "views")
OWN = transactional_id("app", "views", "aaaaaaaaaaaa")
DEAD = transactional_id("app", "views", "0123456789ab")
OTHER = transactional_id("app", "views", "bbbbbbbbbbbb")
KAFKA_4_4 = {9: (1, 10), 22: (0, 6), 65: (0, 0), 66: (0, 2)}


class Txn:
    def __init__(self, txn_id: str, partitions: list[TopicPartition], age_s: float,
                 timeout_ms: int = 10_000, ends_after_fetches: int | None = None) -> None:
        self.txn_id = txn_id
        self.partitions = partitions
        self.started_ms = int(time.time() * 1000 - age_s * 1000)
        self.timeout_ms = timeout_ms
        self.state = "Ongoing"
        self.epoch = 5
        self.ends_after_fetches = ends_after_fetches  # a live owner (or the coordinator) ends it


class Broker:
    """Stands in for ``AIOKafkaClient``: one broker, the group and transaction coordinator."""

    class _Node:
        nodeId = 1  # noqa: N815

    def __init__(self, *txns: Txn, versions: dict | None = None, init_busy: int = 1,
                 init_error: int = 0) -> None:
        self.txns = {t.txn_id: t for t in txns}
        self.versions = versions or KAFKA_4_4
        self.init_busy = init_busy  # CONCURRENT_TRANSACTIONS answers while the abort is written
        self.init_error = init_error
        self.fetches = 0
        self.asked: list[tuple[str, object]] = []
        self.closed = False
        self.cluster = self

    def brokers(self):  # noqa: ANN201
        return [self._Node()]

    async def bootstrap(self) -> None:
        pass

    async def close(self) -> None:
        self.closed = True

    async def coordinator_lookup(self, kind, key):  # noqa: ANN001, ANN201
        return 1

    def _holding(self) -> list[Txn]:
        return [t for t in self.txns.values()
                if t.state == "Ongoing" and CHANGELOG in t.partitions]

    async def send(self, node_id, request, *, group=None):  # noqa: ANN001, ANN201
        struct = request.prepare(self.versions) if hasattr(request, "prepare") else request.build(
            request.CLASSES[0])
        key = struct.API_KEY
        if key == 9:
            self.fetches += 1
            for txn in self.txns.values():
                if txn.ends_after_fetches is not None and self.fetches > txn.ends_after_fetches:
                    txn.state = "CompleteCommit"
            code = 88 if self._holding() else 0
            self.asked.append(("OffsetFetch", code))
            return OffsetFetchResponse_v7(
                0, [(SOURCE.topic, [(SOURCE.partition, 41, -1, "", code, {})], {})], 0, {})
        if key == 66:
            self.asked.append(("ListTransactions", struct.state_filters))
            rows = [(t.txn_id, 4242, t.state, {}) for t in self.txns.values()
                    if t.state in struct.state_filters]
            return ListTransactionsResponse_v0(0, 0, [], rows, {})
        if key == 65:
            self.asked.append(("DescribeTransactions", struct.transactional_ids))
            rows = []
            for txn_id in struct.transactional_ids:
                t = self.txns[txn_id]
                topics = {}
                for tp in t.partitions:
                    topics.setdefault(tp.topic, []).append(tp.partition)
                rows.append((0, txn_id, t.state, t.timeout_ms, t.started_ms, 4242, t.epoch,
                             [(topic, parts, {}) for topic, parts in topics.items()], {}))
            return DescribeTransactionsResponse_v0(0, rows, {})
        if key == 22:
            self.asked.append(("InitProducerId", (struct.transactional_id,
                                                  struct.transaction_timeout_ms)))
            if self.init_error:
                return _InitAnswer(self.init_error)
            txn = self.txns[struct.transactional_id]
            txn.state, txn.epoch = "CompleteAbort", txn.epoch + 1
            if self.init_busy:
                self.init_busy -= 1
                return _InitAnswer(51)
            return _InitAnswer(0)
        raise AssertionError(f"unexpected request {struct!r}")

    def sent(self, api: str) -> list:
        return [what for name, what in self.asked if name == api]


class _InitAnswer:
    def __init__(self, code: int) -> None:
        self.error_code = code


@pytest.fixture(autouse=True)
def quick(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(takeover, "CHECK_EVERY_S", 0.05)
    monkeypatch.setattr(takeover, "FENCE_BACKOFF_S", 0.0)


async def opening(monkeypatch, broker: Broker, timeout_s: float = 5.0) -> tuple[list[str], int]:  # noqa: ANN001
    monkeypatch.setattr(takeover, "AIOKafkaClient", lambda **kwargs: broker)
    counted: list[None] = []
    fenced = await takeover.stable_offset(
        {}, "app", SOURCE, changelog=CHANGELOG, stage_ids=STAGE, own_id=OWN,
        timeout_s=timeout_s, on_fenced=lambda: counted.append(None),
    )
    assert broker.closed
    return fenced, len(counted)


async def test_a_stable_offset_opens_at_once_without_looking_at_transactions(monkeypatch):
    broker = Broker(Txn(DEAD, [TopicPartition(CHANGELOG.topic, 4)], age_s=30))
    assert await opening(monkeypatch, broker) == ([], 0)
    assert broker.asked == [("OffsetFetch", 0)]


async def test_a_dead_owners_expired_transaction_is_fenced_and_the_offset_opens(monkeypatch, caplog):
    dead = Txn(DEAD, [CHANGELOG, TopicPartition("app-views-out", 3)], age_s=11, timeout_ms=9_000)
    live = Txn(OTHER, [TopicPartition(CHANGELOG.topic, 5)], age_s=0.01)
    broker = Broker(dead, live)
    with caplog.at_level(logging.WARNING, logger="app.engine.takeover"):
        assert await opening(monkeypatch, broker) == ([DEAD], 1)
    # Retried while the coordinator wrote the abort, with the transaction's own timeout.
    assert broker.sent("InitProducerId") == [(DEAD, 9_000), (DEAD, 9_000)]
    assert broker.sent("ListTransactions") == [["Ongoing"]]
    assert broker.sent("DescribeTransactions") == [[DEAD, OTHER]]
    assert (dead.state, live.state) == ("CompleteAbort", "Ongoing")
    assert broker.asked[-1] == ("OffsetFetch", 0)
    assert "app-views-changelog[3]: fenced transactional id app-views-0123456789ab" in caplog.text


async def test_a_young_transaction_is_left_to_its_owner(monkeypatch):
    """A live previous owner still in its last round: waited for, never fenced."""
    young = Txn(DEAD, [CHANGELOG], age_s=1, ends_after_fetches=3)
    broker = Broker(young)
    assert await opening(monkeypatch, broker) == ([], 0)
    assert broker.sent("InitProducerId") == []
    assert young.state == "CompleteCommit"


async def test_own_other_stages_other_apps_and_other_partitions_are_never_fenced(monkeypatch):
    ours = Txn(OWN, [CHANGELOG], age_s=60)
    other_stage = Txn(transactional_id("app", "properties", "0123456789ab"), [CHANGELOG], age_s=60)
    other_app = Txn(transactional_id("app-views", "x", "0123456789ab"), [CHANGELOG], age_s=60)
    not_a_worker = Txn("app-views-replay-start", [CHANGELOG], age_s=60)
    elsewhere = Txn(DEAD, [TopicPartition(CHANGELOG.topic, 4)], age_s=60)
    # The coordinator's clean-up ends them all after a while (the wait as before).
    txns = [ours, other_stage, other_app, not_a_worker, elsewhere]
    for txn in txns:
        txn.ends_after_fetches = 6
    broker = Broker(*txns)
    assert await opening(monkeypatch, broker) == ([], 0)
    assert broker.sent("InitProducerId") == []
    assert {tuple(ids) for ids in broker.sent("DescribeTransactions")} == {(DEAD,)}


async def test_without_kip664_or_its_acls_the_opening_waits_as_before(monkeypatch, caplog):
    dead = Txn(DEAD, [CHANGELOG], age_s=30, ends_after_fetches=4)
    broker = Broker(dead, versions={9: (1, 10)})
    with caplog.at_level(logging.WARNING, logger="app.engine.takeover"):
        assert await opening(monkeypatch, broker) == ([], 0)
    assert "could not look for the open transaction" in caplog.text
    assert "ListTransactions v0 is needed" in caplog.text and "Kafka 3.0 or later" in caplog.text
    assert caplog.text.count("could not look") == 1  # refused for good: not asked again
    assert broker.sent("ListTransactions") == []  # refused before sending

    refused = Txn(DEAD, [CHANGELOG], age_s=30, ends_after_fetches=4)
    broker = Broker(refused, init_error=53)
    assert await opening(monkeypatch, broker) == ([], 0)
    assert broker.sent("InitProducerId") == [(DEAD, 10_000)]  # refused: not tried again


async def test_a_transaction_never_ending_still_fails_the_opening_in_words(monkeypatch):
    young = Txn(DEAD, [CHANGELOG], age_s=0, timeout_ms=3_600_000)
    with pytest.raises(UnstableOffsets, match=r"app-views\[3\] still pending"):
        await opening(monkeypatch, Broker(young), timeout_s=0.3)


async def test_fence_gives_up_in_words_when_the_abort_never_completes():
    broker = Broker(Txn(DEAD, [CHANGELOG], age_s=30), init_busy=10**6)
    with pytest.raises(ConcurrentTransactions, match=r"InitProducerId of app-views-0123456789ab: "
                                                     r"CONCURRENT_TRANSACTIONS"):
        await takeover.fence(broker, DEAD, 10_000, give_up_s=0.05)
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await takeover.fence(Broker(Txn(DEAD, [], age_s=1), init_error=53), DEAD, 10_000)


# --- the pure rules, over arbitrary input -------------------------------------------------

worker_ids = st.text("0123456789abcdef", min_size=12, max_size=12)
any_ids = st.one_of(
    worker_ids.map(lambda w: transactional_id("app", "views", w)),
    worker_ids.map(lambda w: transactional_id("app", "other", w)),
    st.text(max_size=30),
)
states = st.sampled_from(["Ongoing", "PrepareCommit", "PrepareAbort", "CompleteAbort", "Empty"])


@given(rows=st.lists(st.tuples(any_ids, st.integers(0, 9), states), max_size=20))
def test_candidates_are_exactly_other_workers_of_the_stage_with_a_transaction_open(rows):
    chosen = candidates([(*row, {}) for row in rows], STAGE, OWN)
    expected = {i for i, _, s in rows if s == "Ongoing" and i != OWN
                and re.fullmatch(r"app-views-[0-9a-f]{12}", i)}
    assert chosen == sorted(expected)


partitions = st.frozensets(
    st.builds(TopicPartition, st.sampled_from([CHANGELOG.topic, "x"]), st.integers(0, 5)),
    max_size=4,
)


@given(
    txns=st.lists(st.builds(OpenTransaction, any_ids, st.integers(0, 9), st.integers(0, 9),
                            st.integers(-1, 10_000), st.integers(1, 10_000), partitions),
                  max_size=8),
    now=st.integers(0, 30_000),
)
def test_only_expired_holders_of_the_partition_are_fenced(txns, now):
    chosen = to_fence(txns, CHANGELOG, now)
    assert chosen == [t for t in txns if CHANGELOG in t.partitions
                      and t.started_ms >= 0 and now - t.started_ms > t.timeout_ms]


def test_described_transactions_in_error_or_not_open_are_left_out():
    rows = [
        (0, DEAD, "Ongoing", 10_000, 5, 7, 2, [("t", [1, 2], {})], {}),
        (105, "gone", "", 0, -1, -1, -1, [], {}),  # TRANSACTIONAL_ID_NOT_FOUND
        (0, OTHER, "PrepareAbort", 10_000, 5, 8, 3, [("t", [1], {})], {}),
    ]
    assert open_transactions(rows) == [
        OpenTransaction(DEAD, 7, 2, 5, 10_000, frozenset({TopicPartition("t", 1),
                                                          TopicPartition("t", 2)})),
    ]
