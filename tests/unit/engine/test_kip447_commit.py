"""The producer side of KIP-447 inside aiokafka's own producer, sender and transaction manager
(app.engine.kip447.commit and aiokafka_hooks), with the broker's answers scripted.

A real (unstarted) ``AIOKafkaProducer`` is used, so a change in the aiokafka internals the
hooks rely on fails here before it fails against a broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from hypothesis import given
from hypothesis import strategies as st
from aiokafka.errors import IllegalOperation, ProducerFenced, TransactionalIdAuthorizationFailed
from aiokafka.producer.transaction_manager import TransactionResult, TransactionState
from aiokafka.protocol.transaction import TxnOffsetCommitRequest_v0
from aiokafka.structs import OffsetAndMetadata

from app.engine.kip447 import GenerationFenced, GroupMetadata, UnsupportedByBroker
from app.engine.kip447.aiokafka_hooks import faust_group_metadata, queue_offsets
from app.engine.kip447.commit import send_offsets_to_transaction, validated_offsets
from app.engine.kip447.protocol import TxnOffsetCommitRequest_v3, TxnOffsetCommitResponse_v3
from app.main import create_app
from app.settings import Settings

KAFKA_4_4 = {28: (0, 6)}
GROUP = GroupMetadata("app", 12, "member-1", None)
TP0, TP1 = TopicPartition("in", 0), TopicPartition("in", 1)
SENT_TO_TXN = TopicPartition("out", 0)


class Broker:
    """Stands in for ``AIOKafkaClient.send``: records each request as the broker would get it
    and answers from a script (one callable per request, given the request)."""

    def __init__(self, versions: dict[int, tuple[int, int]] = KAFKA_4_4) -> None:
        self.versions = versions
        self.requests: list = []
        self.answers: list[Callable] = []

    async def send(self, node_id, request, *, group=None):  # noqa: ANN001
        struct = request.prepare(self.versions)
        self.requests.append(struct)
        return self.answers.pop(0)(struct)


def answer(*codes: int) -> Callable:
    """A TxnOffsetCommit v3 answer giving the asked partitions ``codes`` in order."""

    def respond(request):  # noqa: ANN001
        asked = [(t, p) for t, parts, _ in request.topics for p, *_ in parts]
        by_topic: dict[str, list] = {}
        for (topic, partition), code in zip(asked, codes, strict=True):
            by_topic.setdefault(topic, []).append((partition, code, {}))
        return TxnOffsetCommitResponse_v3(0, [(t, parts, {}) for t, parts in by_topic.items()], {})

    return respond


@pytest.fixture
async def producer(monkeypatch):
    """A transactional producer in a transaction, as the sender leaves it after records went to
    ``out[0]`` and AddOffsetsToTxn; its broker is a ``Broker``."""
    producer = AIOKafkaProducer(transactional_id="txn-1", retry_backoff_ms=1)
    txn = producer._txn_manager
    txn.set_pid_and_epoch(4242, 7)
    txn.begin_transaction()
    txn._txn_partitions.add(SENT_TO_TXN)
    broker = Broker()
    monkeypatch.setattr(producer.client, "send", broker.send)

    async def coordinator(kind, key):  # noqa: ANN001
        producer._sender._coordinators[kind] = 1
        return 1

    monkeypatch.setattr(producer._sender, "_find_coordinator", coordinator)
    producer.broker = broker
    yield producer
    await producer.client.close()


async def sender_step(producer: AIOKafkaProducer) -> None:
    """What aiokafka's sender loop does with queued offsets: add the group, then commit."""
    txn = producer._txn_manager
    group_id = txn.consumer_group_to_add()
    if group_id is not None:
        txn.consumer_group_added(group_id)  # AddOffsetsToTxn answered
    commit = txn.offsets_to_commit()
    if commit is not None:
        await producer._sender._do_txn_offset_commit(*commit)


def queue(producer, offsets=None, group=GROUP) -> asyncio.Future:  # noqa: ANN001
    offsets = offsets or {TP0: OffsetAndMetadata(100, ""), TP1: OffsetAndMetadata(200, "m")}
    return queue_offsets(producer, offsets, group)


async def test_the_commit_carries_the_group_metadata_and_completes(producer):
    producer.broker.answers = [answer(0, 0)]
    done = queue(producer)
    await sender_step(producer)
    assert done.done() and done.result() is None
    (request,) = producer.broker.requests
    assert isinstance(request, TxnOffsetCommitRequest_v3)
    assert request.transactional_id == "txn-1" and request.group_id == "app"
    assert (request.producer_id, request.producer_epoch) == (4242, 7)
    assert request.generation_id == 12 and request.member_id == "member-1"
    assert request.group_instance_id is None
    assert request.topics == [("in", [(0, 100, -1, "", {}), (1, 200, -1, "m", {})], {})]
    txn = producer._txn_manager
    assert txn.state is TransactionState.IN_TRANSACTION and not txn._pending_txn_offsets


@pytest.mark.parametrize(("code", "reason"), [
    (22, "ILLEGAL_GENERATION"), (25, "UNKNOWN_MEMBER_ID"), (82, "FENCED_INSTANCE_ID"),
])
async def test_a_refused_generation_fences_the_round_and_the_abort_still_reaches_the_broker(
    producer, code, reason
):
    producer.broker.answers = [answer(0, code)]
    done = queue(producer)
    await sender_step(producer)
    with pytest.raises(GenerationFenced) as fenced:
        done.result()
    assert fenced.value.reason == reason and fenced.value.group == GROUP
    txn = producer._txn_manager
    assert txn.state is TransactionState.ABORTABLE_ERROR
    with pytest.raises(GenerationFenced):
        await producer.commit_transaction()  # raises before anything is sent
    # aiokafka's error_transaction forgets what the transaction holds, so its abort would
    # send no EndTxn; the hooks keep it.
    txn.aborting_transaction()
    assert not txn.is_empty_transaction()
    assert SENT_TO_TXN in txn.txn_partitions and txn._txn_consumer_group == "app"
    assert txn.needs_transaction_commit() is TransactionResult.ABORT


async def test_retriable_answers_retry_the_partitions_not_accepted_yet(producer):
    producer.broker.answers = [answer(0, 14), answer(16), answer(0)]
    done = queue(producer)
    await sender_step(producer)  # in[0] accepted, in[1]: COORDINATOR_LOAD_IN_PROGRESS
    assert not done.done()
    await sender_step(producer)  # NOT_COORDINATOR: the coordinator is looked up again
    assert not done.done() and 0 not in producer._sender._coordinators
    await sender_step(producer)
    assert done.done() and done.result() is None
    asked = [
        [(t, [p for p, *_ in parts]) for t, parts, _ in r.topics] for r in producer.broker.requests
    ]
    assert asked == [[("in", [0, 1])], [("in", [1])], [("in", [1])]]


@pytest.mark.parametrize(("code", "error"), [
    (47, ProducerFenced), (90, ProducerFenced), (53, TransactionalIdAuthorizationFailed),
])
async def test_a_fenced_producer_or_an_unexpected_answer_ends_the_producer(producer, code, error):
    """Raised out of the sender's task, as aiokafka's own handlers do: the producer's
    transaction manager goes to FATAL_ERROR."""
    producer.broker.answers = [answer(code, 0)]
    queue(producer)
    with pytest.raises(error):
        await sender_step(producer)


async def test_not_a_member_is_fenced_without_asking_the_broker(producer):
    done = queue(producer, group=GroupMetadata("app", -1, ""))
    await sender_step(producer)
    with pytest.raises(GenerationFenced, match="not a member"):
        done.result()
    assert producer.broker.requests == []
    assert producer._txn_manager.state is TransactionState.ABORTABLE_ERROR


async def test_a_broker_without_v3_is_named_and_the_round_is_abortable(producer):
    producer.broker.versions = {28: (0, 2)}
    done = queue(producer)
    await sender_step(producer)
    with pytest.raises(UnsupportedByBroker, match=r"TxnOffsetCommit v3 .* supports v0-v2"):
        done.result()
    assert producer._txn_manager.state is TransactionState.ABORTABLE_ERROR


async def test_offsets_sent_the_aiokafka_way_still_go_as_v0(producer):
    producer.broker.versions = {28: (0, 0)}
    producer.broker.answers = [lambda request: type(request).RESPONSE_TYPE(0, [("in", [(0, 0)])])]
    queue(producer)  # installs the hooks on this producer's sender
    producer._txn_manager._pending_txn_offsets.clear()
    done = producer._txn_manager.add_offsets_to_txn({TP0: OffsetAndMetadata(5, "")}, "app")
    await sender_step(producer)
    assert done.done() and done.result() is None
    assert isinstance(producer.broker.requests[0], TxnOffsetCommitRequest_v0)


async def test_send_offsets_refuses_bad_input_and_a_closed_transaction(producer):
    with pytest.raises(TypeError, match="GroupMetadata"):
        await send_offsets_to_transaction(producer, {TP0: 1}, "app")
    with pytest.raises(ValueError, match="no offsets"):
        await send_offsets_to_transaction(producer, {}, GROUP)
    with pytest.raises(ValueError, match=r"in\[0\]: offset -3 is negative"):
        await send_offsets_to_transaction(producer, {TP0: -3}, GROUP)
    with pytest.raises(TypeError, match=r"\('in', 0\) is not a TopicPartition"):
        await send_offsets_to_transaction(producer, {("in", 0): 1}, GROUP)
    producer._txn_manager.aborting_transaction()
    with pytest.raises(IllegalOperation, match="Not in the middle of a transaction"):
        await send_offsets_to_transaction(producer, {TP0: 1}, GROUP)


async def test_send_offsets_waits_for_the_coordinators_answer(producer):
    producer.broker.answers = [answer(0)]
    call = asyncio.ensure_future(send_offsets_to_transaction(producer, {TP0: 3}, GROUP))
    await asyncio.sleep(0)
    assert not call.done()
    await sender_step(producer)
    await asyncio.wait_for(call, 1)
    assert producer.broker.requests[0].topics == [("in", [(0, 3, -1, "", {})], {})]


def test_a_non_transactional_producer_is_refused():
    async def run() -> None:
        producer = AIOKafkaProducer()
        try:
            with pytest.raises(IllegalOperation, match="transactional_id"):
                await send_offsets_to_transaction(producer, {TP0: 1}, GROUP)
        finally:
            await producer.client.close()

    asyncio.run(run())


# --- the group metadata of a consumer ------------------------------------------------------

def _coordinator() -> SimpleNamespace:
    """The attributes aiokafka's GroupCoordinator holds them in (read from real consumers in
    tests/integration/test_kip447.py)."""
    return SimpleNamespace(group_id="app", generation=5, member_id="m-5", _group_instance_id=None)


def test_faust_group_metadata_reads_faust_s_aiokafka_consumer(tmp_path: Path):
    app = create_app(Settings(data_dir=tmp_path, app_id="kip447-test"))
    with pytest.raises(IllegalOperation, match="faust's consumer has not started"):
        faust_group_metadata(app)
    thread = app.consumer._thread
    thread._consumer = SimpleNamespace(_coordinator=None)
    with pytest.raises(IllegalOperation, match="no group coordinator"):
        faust_group_metadata(app)
    thread._consumer = SimpleNamespace(_coordinator=_coordinator())
    assert faust_group_metadata(app) == GroupMetadata("app", 5, "m-5", None)


# --- the offsets a caller gives ------------------------------------------------------------

tps = st.builds(TopicPartition, st.sampled_from(["in", "é"]), st.integers(0, 3))
values = st.one_of(
    st.integers(-(2**64), 2**64), st.booleans(), st.none(), st.text(max_size=3),
    st.tuples(st.integers(-5, 2**63), st.text(max_size=3) | st.none() | st.just("\ud800")),
    st.builds(OffsetAndMetadata, st.integers(0, 100), st.text(max_size=3)),
    st.tuples(st.integers(0, 5), st.text(max_size=2), st.text(max_size=2)),
)


@given(st.dictionaries(tps | st.tuples(st.text(max_size=2), st.integers()), values, max_size=4))
def test_offsets_are_accepted_exactly_when_each_is_a_partition_and_an_offset(offsets):
    def valid(tp, value) -> bool:  # noqa: ANN001
        if not isinstance(tp, TopicPartition) or isinstance(value, tuple) and len(value) != 2:
            return False
        offset, metadata = value if isinstance(value, tuple) else (value, "")
        return (type(offset) is int and 0 <= offset < 2**63
                and isinstance(metadata, str) and "\ud800" not in metadata)

    if offsets and all(valid(tp, value) for tp, value in offsets.items()):
        checked = validated_offsets(offsets)
        assert list(checked) == list(offsets)
        assert all(isinstance(v, OffsetAndMetadata) for v in checked.values())
        assert all(v.offset == (o[0] if isinstance(o, tuple) else o)
                   for v, o in zip(checked.values(), offsets.values(), strict=True))
    else:
        with pytest.raises((ValueError, TypeError)) as refused:
            validated_offsets(offsets)
        assert str(refused.value)  # says what is wrong
