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
from app import codec
from app.engine.processor import Processor
from app.engine.store import PartitionStore
from app.engine.transactions import Outbox
from app.models.dead_letter import DeadLetterRoute
from app.models.events import Rejection

log = logging.getLogger(__name__)


class ProfileRejectsProcessor(Processor):
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
        route = DeadLetterRoute(source_topic, dlq_topic, dlq_max_message_bytes)
        super().__init__(partition, store, outbox, route)
        self._max_bytes = max_bytes

    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        result = codec.decode_profile(key, value, max_bytes=self._max_bytes)
        if isinstance(result, Rejection):
            log.warning(
                "%s[%d]@%d rejected: %s (%s)",
                self.dead_letters.origin, self.partition, offset, result.reason, result.detail,
            )
            self.dead_letter(offset, key, value, result)
