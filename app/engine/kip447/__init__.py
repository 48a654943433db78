"""KIP-447 (exactly-once fenced by the consumer group's generation) for aiokafka 0.14.

aiokafka sends a transaction's offsets with TxnOffsetCommit v0, which carries no group
generation, and fetches offsets with OffsetFetch v3, which cannot wait for an open
transaction. Without them, the only way to keep a zombie from committing is a transactional
producer per input partition (Kafka's first exactly-once design). This package adds:

- ``protocol``: TxnOffsetCommit v3 and OffsetFetch v7 as aiokafka protocol classes (and
  ListTransactions v0 and DescribeTransactions v0 for ``app.engine.takeover``);
- ``commit.send_offsets_to_transaction``: a transaction's offsets committed under the
  group's generation; ``GenerationFenced`` when the coordinator refuses it;
- ``fetch.fetch_committed``: committed offsets with ``require_stable``;
- ``support.check_brokers``: every broker knows both requests (ApiVersions), for start-up;
- ``aiokafka_hooks``: the one module that touches aiokafka's (and faust's) internals, with
  ``consumer_group_metadata`` / ``faust_group_metadata`` to read a member's metadata.

Delete it when aiokafka ships both (``tests/unit/engine/test_kip447_upstream.py`` fails
then; docs/internals.md).
"""

from app.engine.kip447.aiokafka_hooks import consumer_group_metadata, faust_group_metadata
from app.engine.kip447.commit import send_offsets_to_transaction
from app.engine.kip447.fetch import fetch_committed
from app.engine.kip447.outcomes import GenerationFenced, GroupMetadata, UnstableOffsets
from app.engine.kip447.protocol import UnsupportedByBroker
from app.engine.kip447.support import check_brokers

__all__ = [
    "GenerationFenced",
    "GroupMetadata",
    "UnstableOffsets",
    "UnsupportedByBroker",
    "check_brokers",
    "consumer_group_metadata",
    "faust_group_metadata",
    "fetch_committed",
    "send_offsets_to_transaction",
]
