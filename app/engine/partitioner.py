"""The Java client's default partitioner (murmur2): the partition a key goes to.

Every producer of our topics (the Java clients, aiokafka, our stages) partitions keys this
way, so a key's partition can be known without asking: the stages route by it, the web
server finds a key's owner with it, the replay compares answers partition by partition.
"""

from __future__ import annotations

from aiokafka.partitioner import murmur2

# Text keys that repeat (user ids) are remembered per partition count: murmur2 in pure
# Python costs more than the dict lookup. A plain dict emptied when full (docs/measurements.md).
_CACHE: dict[int, dict[str, int]] = {}
CACHED_KEYS = 100_000


def key_partition(key: bytes, partitions: int) -> int:
    """The partition of ``partitions`` that ``key`` goes to."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def text_partition(text: str, partitions: int) -> int:
    """``key_partition`` of the UTF-8 of ``text``, recent texts remembered."""
    known = _CACHE.get(partitions)
    if known is None:
        known = _CACHE[partitions] = {}
    partition = known.get(text)
    if partition is None:
        if len(known) >= CACHED_KEYS:
            known.clear()
        partition = known[text] = key_partition(text.encode(), partitions)
    return partition
