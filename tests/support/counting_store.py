"""``CountingStore``: a partition store that counts what it reads, for the tests and the
bench (``bench.history``) that measure how many reads a lookup takes."""

from __future__ import annotations

from collections.abc import Iterator

from app.engine.store import PartitionStore


class CountingStore(PartitionStore):
    """Counts the reads a lookup makes: gets, and the items scans return (``reads``)."""

    reads = 0

    def get(self, key: bytes) -> bytes | None:
        self.reads += 1
        return super().get(key)

    def scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        for item in super().scan(start, end):
            self.reads += 1
            yield item
