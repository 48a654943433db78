"""What app.engine.kip447 makes up for in aiokafka. Each test fails when aiokafka ships it:
then the package (or that part of it) can go, as docs/internals.md says."""

from __future__ import annotations

import inspect

import aiokafka
import aiokafka.protocol.admin as admin_protocol
import aiokafka.protocol.commit as commit_protocol
import aiokafka.protocol.transaction as transaction_protocol
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.producer.transaction_manager import TransactionManager


def test_aiokafka_has_no_txn_offset_commit_v3():
    """aiokafka sends a transaction's offsets without the group generation (v0 only), and its
    producer takes a group id, not the group's metadata. When this fails, use aiokafka's own
    ``send_offsets_to_transaction`` with the consumer's group metadata and delete
    ``app/engine/kip447/commit.py``, ``aiokafka_hooks.py`` and their tests."""
    versions = [n for n in dir(transaction_protocol) if n.startswith("TxnOffsetCommitRequest_v")]
    assert versions == ["TxnOffsetCommitRequest_v0"], aiokafka.__version__
    parameters = inspect.signature(AIOKafkaProducer.send_offsets_to_transaction).parameters
    assert list(parameters) == ["self", "offsets", "group_id"]


def test_aiokafka_has_no_offset_fetch_v7():
    """aiokafka fetches committed offsets with OffsetFetch v1-v3, without ``require_stable``.
    When this fails, use its fetch and delete ``app/engine/kip447/fetch.py``."""
    versions = sorted(n for n in dir(commit_protocol) if n.startswith("OffsetFetchRequest_v"))
    assert versions == [f"OffsetFetchRequest_v{v}" for v in range(4)], aiokafka.__version__


def test_aiokafka_has_no_transaction_listing():
    """aiokafka has neither ListTransactions nor DescribeTransactions (KIP-664). When this
    fails, use its classes in ``app/engine/takeover.py`` and delete ours from
    ``app/engine/kip447/protocol.py``."""
    found = [
        name for module in (admin_protocol, transaction_protocol) for name in dir(module)
        if name.startswith(("ListTransactions", "DescribeTransactions"))
    ]
    assert found == [], aiokafka.__version__


async def test_aiokafka_forgets_the_transactions_partitions_on_an_abortable_error():
    """After ``error_transaction`` the transaction manager holds no partition and no group, so
    the abort that follows sends no EndTxn and the broker's transaction stays open (the next
    transaction of the producer continues it). ``aiokafka_hooks._abortable`` puts them back.
    When this fails, aiokafka keeps them itself and ``_abortable`` can call it alone."""
    txn = TransactionManager("txn-1", 60_000)
    txn.set_pid_and_epoch(1, 0)
    txn.begin_transaction()
    txn.maybe_add_partition_to_txn(TopicPartition("out", 0))
    txn.partition_added(TopicPartition("out", 0))
    txn.consumer_group_added("app")
    txn.error_transaction(RuntimeError("refused"))
    txn.wait_for_transaction_end().exception()
    txn.aborting_transaction()
    assert txn.is_empty_transaction()
