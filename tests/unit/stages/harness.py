"""Drive a partition processor the way app.engine.partitions.OwnedPartitions does, minus Kafka.

``commit`` mirrors a commit round: the punctuators (all of them with ``publish``, none
without), before_commit, then (as if the Kafka transaction succeeded) the outbox counts as published and the pending state is applied to
RocksDB with a changelog offset; a "crash" is simply not committing.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from app.stages import by_user
from app.engine.transactions import Outbox
from app.windows import iso_ms


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    key: bytes | None
    value: bytes | None
    headers: tuple


def records(outbox: Outbox, topic: str | None = None) -> list[Record]:
    out = []
    for (t, partition), bucket in outbox.records.items():
        if topic is None or t == topic:
            out.extend(Record(t, partition, k, v, tuple(h)) for k, v, h in bucket)
    return out


def view_bytes(
    event_id: str, ts_ms: int, prop: str = "prop-1", user: str = "user-1", **extra
) -> bytes:
    doc = {
        "eventId": event_id,
        "eventType": "property.viewed",
        "version": "1.0",
        "timestamp": iso_ms(ts_ms),
        "propertyId": prop,
        "userId": user,
        **extra,
    }
    return orjson.dumps(doc)


class Driver:
    """Feeds one processor consecutive offsets and records what its commits publish."""

    def __init__(self, processor, now_ms: int) -> None:
        self.proc = processor
        self.now_ms = now_ms
        self.next_offset = processor.applied_offset + 1
        self.published: list[Record] = []
        self.changelog_offset = 0

    def send(self, value: bytes | None, key: bytes | None = b"k", now_ms: int | None = None) -> int:
        offset = self.next_offset
        self.proc.process(offset, key, value, self.now_ms if now_ms is None else now_ms)
        self.next_offset += 1
        return offset

    def view(
        self, event_id: str, ts_ms: int, prop: str = "prop-1", user: str = "user-1", **kw
    ) -> int:
        now_ms = kw.pop("now_ms", None)
        return self.send(view_bytes(event_id, ts_ms, prop, user, **kw), prop.encode(), now_ms)

    def pending(self, topic: str | None = None) -> list[Record]:
        return records(self.proc.outbox, topic)

    def commit(self, publish: bool = True) -> bool:
        proc = self.proc
        if publish:
            proc.punctuate(self.now_ms, every=True)
        if not proc.before_commit(self.now_ms):
            return False
        self.changelog_offset += len(proc.store.pending)
        self.published.extend(records(proc.outbox))
        proc.outbox.clear()
        proc.store.seal()
        proc.store.apply_sealed(self.changelog_offset)
        return True

    def by_user(self) -> list[tuple[int, str, int, str]]:
        """Commit; then the views-by-user entries published so far, as (partition, userId,
        week, segment), one record's entries after the other."""
        self.commit(publish=False)
        return [
            (r.partition, *entry)
            for r in self.published
            if r.key == by_user.KEY
            for entry in by_user.decode(r.key, r.value)
        ]

    def crash(self) -> None:
        """Lose everything not committed (pending state and unsent outbox)."""
        self.proc.store.discard_pending()
        self.proc.outbox.clear()
