"""Per-partition processing of ``user.profiles`` in the consumer group: dead-letter the
invalid records, each exactly once.

Every worker's profiles table reads the whole topic itself and skips invalid records
(``app.tables.profiles``); only the owner of a partition sends its invalid records to
``user.profiles.dlq``, in the partition's transaction with the applied offset (its only
state) and the group offset, like the views stage's dead letters. Both sides call the same
``codec.decode_profile``, so what the tables skip is exactly what lands here.
"""

from __future__ import annotations

import logging
from collections import Counter

from app import codec
from app.models.dead_letter import fit_dead_letter
from app.models.events import Rejection
from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.stages.applied import Applied, AppliedOffsets

log = logging.getLogger(__name__)

class ProfileRejectsProcessor(AppliedOffsets):
    def __init__(
        self,
        partition: int,
        store: PartitionStore,
        outbox: Outbox,
        *,
        source_topic: str,
        dlq_topic: str,
        max_bytes: int,
        dlq_max_message_bytes: int,
    ) -> None:
        self.partition = partition
        self.store = store
        self.outbox = outbox
        self._source_topic = source_topic
        self._dlq_topic = dlq_topic
        self._max_bytes = max_bytes
        self._dlq_max_message_bytes = dlq_max_message_bytes
        self.applied = Applied(store)
        self.outcomes: Counter[str] = Counter()

    def process(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        if not self.first_time(offset):
            return
        result = codec.decode_profile(key, value, max_bytes=self._max_bytes)
        if isinstance(result, Rejection):
            log.warning(
                "%s[%d]@%d rejected: %s (%s)",
                self._source_topic, self.partition, offset, result.reason, result.detail,
            )
            headers = result.dlq_headers(self._source_topic, self.partition, offset)
            key, value, headers = fit_dead_letter(key, value, headers, self._dlq_max_message_bytes)
            self.outbox.add(self._dlq_topic, self.partition, key, value, headers)
            self.outcomes[f"rejected:{result.reason}"] += 1

    @property
    def has_unpublished(self) -> bool:
        return False

    def before_commit(self, now_ms: int, publish: bool) -> bool:
        if not self.applied.unstaged and not len(self.outbox):
            return False
        self.applied.stage()
        return True
