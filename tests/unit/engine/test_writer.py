"""``TransactionalWriter``: discarding a broken producer never ends the worker; a failed
commit is retried when the broker may take it later, and fails loudly when it never will."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    IllegalOperation,
    CorruptRecordException,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotEnoughReplicasError,
    NotLeaderForPartitionError,
    OutOfOrderSequenceNumber,
    PolicyViolationError,
    ProducerFenced,
    RecordListTooLargeError,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnknownError,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from app.engine import transactions as writer_module
from app.engine.kip447 import GenerationFenced, GroupMetadata, UnsupportedByBroker
from app.engine.transactions import (
    MAX_BATCH_BYTES,
    TRANSACTION_TIMEOUT_MS,
    Failure,
    Fenced,
    Outbox,
    OutputRefused,
    TransactionalWriter,
    classify,
    refuses_batch,
    write_once,
)


class BrokenProducer:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        # seen with the broker SIGKILLed: aiokafka's metadata task wrote to a closed transport
        RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed"),
        ConnectionResetError("connection reset"),
    ],
)
async def test_stopping_a_broken_producer_does_not_raise(error: BaseException) -> None:
    writer = TransactionalWriter("views-0", {})
    producer = BrokenProducer(error)
    writer._producer = producer  # noqa: SLF001
    await writer.stop()
    assert producer.stopped and writer._producer is None  # noqa: SLF001


# -- what a failed commit calls for ----------------------------------------------------------


def refused(cause: BaseException) -> OutputRefused:
    return OutputRefused("views-by-user", 3, 1_200_000, 1, cause)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ProducerFenced(), Failure.FENCED),
        (GenerationFenced(GroupMetadata("g", 3, "m"), "ILLEGAL_GENERATION"), Failure.FENCED),
        (UnsupportedByBroker("TxnOffsetCommit", 3, "KIP-447", (0, 2)), Failure.REFUSED),
        (refused(MessageSizeTooLargeError()), Failure.REFUSED),
        (refused(RecordTooLargeError()), Failure.REFUSED),
        (TopicAuthorizationFailedError("views-by-user"), Failure.REFUSED),
        (GroupAuthorizationFailedError(), Failure.REFUSED),
        (TransactionalIdAuthorizationFailed(), Failure.REFUSED),
        (KafkaConnectionError(), Failure.TRANSIENT),
        (NodeNotReadyError(), Failure.TRANSIENT),
        (RequestTimedOutError(), Failure.TRANSIENT),
        (NotLeaderForPartitionError(), Failure.TRANSIENT),
        (KafkaTimeoutError(), Failure.TRANSIENT),
        (OutOfOrderSequenceNumber(), Failure.TRANSIENT),  # after a broker restart
        (asyncio.TimeoutError(), Failure.TRANSIENT),
        (ConnectionResetError(), Failure.TRANSIENT),
        (AssertionError("invalid state transition"), Failure.TRANSIENT),
        (IllegalOperation("Can't send messages while not in transaction"), Failure.TRANSIENT),
    ],
)
def test_classify(error: BaseException, expected: Failure) -> None:
    assert classify(error) is expected


@pytest.mark.parametrize(
    ("error", "refuses"),
    [
        (MessageSizeTooLargeError(), True),
        (RecordListTooLargeError(), True),
        (CorruptRecordException(), True),
        (UnknownError(), True),  # what aiokafka makes of INVALID_RECORD (87)
        (PolicyViolationError(), True),
        (TopicAuthorizationFailedError("t"), True),
        (NotLeaderForPartitionError(), False),
        (RequestTimedOutError(), False),
        (KafkaConnectionError(), False),
        (NotEnoughReplicasError(), False),
    ],
)
def test_refuses_batch(error: BaseException, refuses: bool) -> None:
    assert refuses_batch(error) is refuses


# -- commit against a scripted producer -------------------------------------------------------


class RaisedAtSend:
    """An answer that ``send_batch`` raises itself instead of failing the delivery."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ScriptedProducer:
    """The part of AIOKafkaProducer the writer uses; each delivery answers with the next item
    of ``answers`` (an exception, a ``RaisedAtSend``, or None for success)."""

    def __init__(self, answers: list, **config: object) -> None:
        self.answers = answers
        self.config = config
        self.sent: list[tuple[str, int, int]] = []  # topic, partition, batch bytes
        self.records: list[tuple[str, int, bytes | None, bytes | None, list]] = []  # as sent
        self.committed = self.aborted = 0
        self.added: list[TopicPartition] = []  # partitions added to a transaction without a record
        self.offsets_sent = 0
        self._txn_manager = SimpleNamespace(maybe_add_partition_to_txn=self.added.append)

    async def start(self) -> None:
        await asyncio.sleep(0)  # a real start waits on the broker: other tasks run meanwhile

    async def stop(self) -> None:
        pass

    async def begin_transaction(self) -> None:
        pass

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(MAX_BATCH_BYTES, 0, is_transactional=1)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int):
        self.sent.append((topic, partition, batch.size()))
        for record in MemoryRecords(bytes(batch._build())).next_batch():  # noqa: SLF001
            self.records.append((topic, partition, record.key, record.value, record.headers))
        fut = asyncio.get_running_loop().create_future()
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, RaisedAtSend):
            raise answer.error
        if answer is None:
            fut.set_result(SimpleNamespace(offset=len(self.sent)))
        else:
            fut.set_exception(answer)
        return fut

    async def send_offsets_to_transaction(self, offsets, group_id) -> None:  # noqa: ANN001
        self.offsets_sent += 1

    async def commit_transaction(self) -> None:
        self.committed += 1

    async def abort_transaction(self) -> None:
        self.aborted += 1


@pytest.fixture
def producers(monkeypatch: pytest.MonkeyPatch):
    """The producers the writer starts, scripted by ``answers`` (shared by all of them)."""
    made: list[ScriptedProducer] = []
    answers: list = []

    def factory(**config: object) -> ScriptedProducer:
        producer = ScriptedProducer(answers, **config)
        made.append(producer)
        return producer

    monkeypatch.setattr(writer_module, "AIOKafkaProducer", factory)
    return SimpleNamespace(made=made, answers=answers)


def outbox_with(topic: str, value: bytes) -> Outbox:
    outbox = Outbox()
    outbox.add(topic, 3, b"users-by-week-segment", value)
    return outbox


async def commit(writer: TransactionalWriter, outbox: Outbox) -> int | None:
    offsets = {TopicPartition("property.views", 3): 10}
    return await asyncio.wait_for(writer.commit(outbox, "changelog", offsets, "group"), 5)


async def test_a_refused_record_fails_the_commit_at_once_naming_topic_partition_and_size(
    producers, caplog
) -> None:
    producers.answers.append(MessageSizeTooLargeError())
    writer = TransactionalWriter("views-3", {})
    with pytest.raises(OutputRefused) as raised:
        await commit(writer, outbox_with("views-by-user", b"x" * 2000))
    exc = raised.value
    assert (exc.topic, exc.partition, exc.error) == ("views-by-user", 3, "MessageSizeTooLargeError")
    assert exc.size > 2000
    assert len(producers.made) == 1 and producers.made[0].aborted == 1  # tried once, not again
    assert "views-by-user[3]" in caplog.text and str(exc.size) in caplog.text
    assert writer._producer is None  # noqa: SLF001


async def test_transient_failures_are_retried_with_a_fresh_producer(producers, caplog) -> None:
    producers.answers.extend([RequestTimedOutError(), NotLeaderForPartitionError()])
    writer = TransactionalWriter("views-3", {})
    assert await commit(writer, outbox_with("views-by-user", b"[]")) == {}
    assert len(producers.made) == 3 and producers.made[-1].committed == 1
    assert caplog.text.count("retrying") == 2  # a log line per try


async def test_a_transaction_aiokafka_left_in_abortable_error_is_retried_not_fatal(producers) -> None:
    # Seen in the broker-restart fault test: an earlier request of the transaction failed,
    # aiokafka's transaction manager went to ABORTABLE_ERROR, and the next send_batch raised
    # IllegalOperation, which is not a KafkaError: the worker exited.
    producers.answers.append(RaisedAtSend(IllegalOperation("Can't send messages while not in transaction")))
    writer = TransactionalWriter("views-3", {})
    assert await commit(writer, outbox_with("views-by-user", b"[]")) == {}
    assert len(producers.made) == 2
    assert producers.made[0].aborted == 1 and producers.made[-1].committed == 1


async def test_a_record_over_max_request_size_is_refused_before_anything_is_sent(producers) -> None:
    """aiokafka puts a record of any size into an empty batch and send_batch checks nothing:
    sent, it would be refused by the broker, or by the socket as a request too large (which
    looks like a lost connection, retried for ever)."""
    writer = TransactionalWriter("views-3", {}, max_request_size=MAX_BATCH_BYTES + 1000)
    with pytest.raises(OutputRefused) as raised:
        await commit(writer, outbox_with("property.views.dlq", b"x" * (MAX_BATCH_BYTES + 1000)))
    assert raised.value.topic == "property.views.dlq"
    assert raised.value.size > MAX_BATCH_BYTES + 1000
    assert producers.made[0].sent == []


async def test_the_producer_may_send_what_the_dead_letter_topics_take(producers) -> None:
    writer = TransactionalWriter("views-3", {}, max_request_size=1_114_112)
    await commit(writer, outbox_with("property.views.dlq", b"x" * 1_048_576))
    assert producers.made[0].config["max_request_size"] == 1_114_112
    [(_, _, size)] = producers.made[0].sent
    assert size > 1_048_576


async def test_a_slow_commit_is_followed_by_a_transaction_over_its_partitions_without_records(
    producers, monkeypatch, caplog
) -> None:
    """A broker that restarts while it writes a transaction's markers can leave the transaction
    open on some partitions for good; the next transaction of the same producer over the same
    partitions closes it, and writes nothing twice."""
    writer = TransactionalWriter("views-3", {})
    await commit(writer, outbox_with("views-by-user", b"[]"))
    [producer] = producers.made
    assert (producer.committed, producer.added) == (1, []) and "once more" not in caplog.text

    monkeypatch.setattr(writer_module, "SLOW_COMMIT_S", 0.0)  # every commit counts as slow now
    await commit(writer, outbox_with("views-by-user", b"[]"))
    assert len(producers.made) == 1  # the same producer: its markers close what it left open
    assert producer.committed == 3 and producer.offsets_sent == 3
    assert [topic for topic, _, _ in producer.sent] == ["views-by-user"] * 2  # no record twice
    assert producer.added == [TopicPartition("views-by-user", 3)]
    assert "views-3 took" in caplog.text and "once more" in caplog.text


# -- a round under the group's generation (KIP-447) ----------------------------------------

GROUP = GroupMetadata("group", 7, "member-1")


@pytest.fixture
def kip447(monkeypatch: pytest.MonkeyPatch):
    """kip447's ``send_offsets_to_transaction`` as the writer calls it: each call recorded,
    ``refuse`` (an exception, or None) raised by the next calls."""
    calls = SimpleNamespace(sent=[], refuse=None)

    async def send_offsets_to_transaction(producer, offsets, group) -> None:  # noqa: ANN001
        calls.sent.append((producer, dict(offsets), group))
        if calls.refuse is not None:
            raise calls.refuse

    monkeypatch.setattr(writer_module, "send_offsets_to_transaction", send_offsets_to_transaction)
    return calls


async def test_a_round_commits_every_partitions_offsets_under_the_group_metadata(
    producers, kip447
) -> None:
    outbox = Outbox()
    outbox.extend("changelog", 0, [(b"a", b"1"), (b"b", b"2")])
    outbox.extend("changelog", 2, [(b"c", b"3")])
    outbox.add("out", 5, b"k", b"v")
    offsets = {TopicPartition("in", 0): 11, TopicPartition("in", 2): 4}
    writer = TransactionalWriter("app-views-0123456789ab", {})

    last = await writer.commit(outbox, "changelog", offsets, GROUP)

    [producer] = producers.made
    assert producer.config["transaction_timeout_ms"] == TRANSACTION_TIMEOUT_MS == 10_000
    assert producer.config["transactional_id"] == "app-views-0123456789ab"
    [(to, sent, group)] = kip447.sent
    assert (to, sent, group) == (producer, offsets, GROUP)
    assert producer.offsets_sent == 0  # never aiokafka's own, generation-less commit
    assert producer.committed == 1
    # the last changelog offset of each changelog partition (the scripted offsets count sends:
    # the records added first, then the changelog writes)
    assert last == {0: 2, 2: 3}


async def test_changelog_writes_are_sent_from_the_dict_with_the_last_value_of_each_key(
    producers,
) -> None:
    """A store's sealed writes go out as they are (no copy into records first); a key given
    twice to one transaction is sent once, with its last value (a compacted changelog restored
    in order ends the same), and no dict given is changed."""
    sealed = {b"a": b"1", b"gone": None}
    first = Outbox()
    first.extend("changelog", 0, sealed)
    later = Outbox()
    later.extend("changelog", 0, [(b"a", b"2"), (b"b", b"3"), (b"b", b"4")])
    later.add("out", 0, b"k", b"v", [("h", b"1")])
    merged = Outbox.merged([first, later])
    assert first.writes["changelog", 0] is sealed  # kept, not copied
    assert len(merged) == 4 and merged.partitions() == [("out", 0), ("changelog", 0)]

    await commit(TransactionalWriter("views-3", {}), merged)

    assert producers.made[0].records == [
        ("out", 0, b"k", b"v", [("h", b"1")]),
        ("changelog", 0, b"a", b"2", []),
        ("changelog", 0, b"gone", None, []),
        ("changelog", 0, b"b", b"4", []),
    ]
    assert sealed == {b"a": b"1", b"gone": None}


async def test_changelog_writes_fill_several_batches_and_a_write_too_large_is_refused(
    producers,
) -> None:
    value = b"v" * 100_000
    writes = {b"k%02d" % i: value for i in range(12)}  # 1.2 MB: three batches of 512 KiB
    writer = TransactionalWriter("views-3", {}, max_request_size=MAX_BATCH_BYTES + 1000)
    outbox = Outbox()
    outbox.extend("changelog", 3, writes)
    await commit(writer, outbox)
    [producer] = producers.made
    assert [size <= MAX_BATCH_BYTES for _, _, size in producer.sent] == [True] * 3
    assert [(key, v) for _, _, key, v, _ in producer.records] == list(writes.items())

    too_large = Outbox()
    too_large.extend("changelog", 3, {**writes, b"big": b"x" * (MAX_BATCH_BYTES + 1000)})
    with pytest.raises(OutputRefused) as raised:
        await commit(writer, too_large)
    assert (raised.value.topic, raised.value.partition) == ("changelog", 3)
    assert raised.value.size > MAX_BATCH_BYTES + 1000
    assert len(producer.sent) == 3  # nothing of it sent


async def test_a_round_the_group_refuses_is_aborted_and_not_retried(producers, kip447) -> None:
    kip447.refuse = GenerationFenced(GROUP, "ILLEGAL_GENERATION")
    writer = TransactionalWriter("app-views-0123456789ab", {})
    with pytest.raises(Fenced) as raised:
        await writer.commit(outbox_with("views-by-user", b"[]"), "changelog",
                            {TopicPartition("in", 3): 1}, GROUP)
    assert isinstance(raised.value.__cause__, GenerationFenced)
    [producer] = producers.made  # no second try
    assert (producer.aborted, producer.committed) == (1, 0)
    assert writer._producer is None  # noqa: SLF001 - thrown away: the next round starts a new one

    kip447.refuse = None
    await writer.commit(outbox_with("views-by-user", b"[]"), "changelog",
                        {TopicPartition("in", 3): 1}, GROUP)
    assert len(producers.made) == 2 and producers.made[1].committed == 1


async def test_a_fenced_producer_fences_the_round(producers) -> None:
    producers.answers.append(ProducerFenced())
    writer = TransactionalWriter("app-views-0123456789ab", {})
    with pytest.raises(Fenced):
        await commit(writer, outbox_with("views-by-user", b"[]"))
    assert len(producers.made) == 1 and producers.made[0].aborted == 1


async def test_concurrent_starts_make_one_producer(producers) -> None:
    writer = TransactionalWriter("app-views-0123456789ab", {})
    await asyncio.gather(writer.start(), writer.start(), writer.start())
    assert len(producers.made) == 1


def test_outboxes_merge_in_order_without_changing_them() -> None:
    first, second = Outbox(), Outbox()
    first.add("out", 1, b"a", b"1")
    first.add("out", 2, b"b", b"2")
    second.add("out", 1, b"c", b"3")
    merged = Outbox.merged([first, second])
    assert merged.records == {
        ("out", 1): [(b"a", b"1", []), (b"c", b"3", [])],
        ("out", 2): [(b"b", b"2", [])],
    }
    assert len(first) == 2 and len(second) == 1


async def test_a_commands_transaction_writes_its_records_and_offsets_only_when_given(
    producers,
) -> None:
    """``write_once`` (a replay's start, a promotion): one transaction by a producer of its
    own, stopped after; offsets are committed only when there are some."""
    outbox = Outbox()
    outbox.add("analytics.insights", 1, b"k", b"v", [("h", b"1")])
    outbox.add("shadow-replay", 0, b"manifest", b"{}")

    await write_once("shadow-promote", {}, outbox, {}, "shadow", max_request_size=3 << 20)
    await write_once("shadow-start", {}, Outbox(), {TopicPartition("views", 0): 7}, "shadow")

    promote, start = producers.made
    assert promote.config["transactional_id"] == "shadow-promote"
    assert promote.config["max_request_size"] == 3 << 20
    assert [(t, p) for t, p, _ in promote.sent] == [("analytics.insights", 1), ("shadow-replay", 0)]
    assert (promote.committed, promote.offsets_sent) == (1, 0)
    assert (start.sent, start.committed, start.offsets_sent) == ([], 1, 1)
