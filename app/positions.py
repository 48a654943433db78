"""Positions: which input an answer reflects, as offsets per source partition.

A position maps ``(topic, partition)`` to the last offset of that partition the answer
includes (Kafka Streams' ``Position`` of KIP-796); a partition it does not name, it says
nothing about. ``committed`` tells whether the state it describes has been committed (a
crash cannot revise it) or is only applied on its owner (``consistency=latest``).

Its token is compact, opaque and URL-safe: base64url (no padding) of a version byte, four
bytes of the app id's SHA-256, the number of topics, then per topic four bytes of its name's
SHA-256, its number of partitions and per partition the partition and the offset + 1, every
number an unsigned LEB128 varint. Whoever decodes it knows the app id
and the topics it reads, so a token of another app or of a topic this app does not read is
refused like a malformed one. Everything here is a pure function of its input and raises
nothing but ``BadPosition`` on any text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

TOKEN_VERSION = 1
MAX_BOUND_CHARS = 4096
MAX_OFFSET = (1 << 63) - 1
_TAG_BYTES = 4
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
_DIGITS = re.compile(r"0|[1-9][0-9]{0,18}")

TopicPartition = tuple[str, int]


class BadPosition(ValueError):
    """Text that is not a position of this app (answered 400 with its message)."""


@dataclass(slots=True)
class Position:
    """``offsets``: (topic, partition) -> last offset reflected (-1: none of it yet)."""

    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    committed: bool = True

    def merged(self, other: Position) -> Position:
        """Per partition the further of the two; committed only if both are."""
        out = dict(self.offsets)
        for tp, offset in other.offsets.items():
            out[tp] = max(out.get(tp, -1), offset)
        return Position(out, self.committed and other.committed)

    def behind(self, bound: Position) -> dict[TopicPartition, int]:
        """The partitions of ``bound`` that this position names and has not reached, with
        the offset the bound asks for. A bound on a partition the answer does not reflect
        concerns another answer and is ignored."""
        return {
            tp: offset
            for tp, offset in bound.offsets.items()
            if tp in self.offsets and self.offsets[tp] < offset
        }

    def as_json(self, token: str) -> dict:
        topics: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(self.offsets.items()):
            topics.setdefault(topic, {})[str(partition)] = offset
        return {"committed": self.committed, "offsets": topics, "token": token}


def _tag(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:_TAG_BYTES]


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, at: int, limit: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data):
            raise BadPosition("token is cut short")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if value > limit:
            raise BadPosition("token holds a number out of range")
        if not byte & 0x80:
            if byte == 0 and shift:
                raise BadPosition("token holds a number written in more bytes than needed")
            return value, at
        shift += 7


class PositionCodec:
    """Tokens and bounds of one app: its id and the source topics with their partitions."""

    def __init__(self, app_id: str, topics: Mapping[str, int]) -> None:
        self.app_id = app_id
        self.topics = dict(topics)  # topic -> partition count
        self._app_tag = _tag(app_id)
        self._tags = {topic: _tag(topic) for topic in topics}
        self._by_tag = {tag: topic for topic, tag in self._tags.items()}

    # -- tokens -----------------------------------------------------------------------------
    def token(self, position: Position) -> str:
        by_topic: dict[str, list[tuple[int, int]]] = {}
        for (topic, partition), offset in sorted(position.offsets.items()):
            by_topic.setdefault(topic, []).append((partition, offset))
        raw = bytearray([TOKEN_VERSION])
        raw += self._app_tag
        raw += _varint(len(by_topic))
        for topic, entries in by_topic.items():
            raw += (self._tags.get(topic) or _tag(topic)) + _varint(len(entries))
            for partition, offset in entries:
                raw += _varint(partition) + _varint(max(offset, -1) + 1)
        return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode("ascii")

    def decode(self, token: str) -> Position:
        """The position a token of this app holds; BadPosition for anything else."""
        if not _TOKEN_CHARS.fullmatch(token) or len(token) % 4 == 1:
            raise BadPosition("not a position token (base64url text)")
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise BadPosition("not a position token (base64url text)") from None
        if len(raw) < 1 + _TAG_BYTES + 1 or raw[0] != TOKEN_VERSION:
            raise BadPosition("not a position token of this version")
        if raw[1 : 1 + _TAG_BYTES] != self._app_tag:
            raise BadPosition(f"a position token of another app, not of {self.app_id!r}")
        topics, at = _read_varint(raw, 1 + _TAG_BYTES, len(raw))
        offsets: dict[TopicPartition, int] = {}
        for _ in range(topics):
            tag = raw[at : at + _TAG_BYTES]
            if len(tag) < _TAG_BYTES:
                raise BadPosition("token is cut short")
            topic = self._by_tag.get(tag)
            if topic is None:
                raise BadPosition("token names a topic this app does not read")
            if any(t == topic for t, _ in offsets):
                raise BadPosition(f"token names {topic} twice")
            count, at = _read_varint(raw, at + _TAG_BYTES, len(raw))
            for _ in range(count):
                partition, at = _read_varint(raw, at, MAX_OFFSET)
                offset, at = _read_varint(raw, at, MAX_OFFSET + 1)
                self._check_partition(topic, partition)
                if (topic, partition) in offsets:
                    raise BadPosition(f"token names {topic}[{partition}] twice")
                offsets[(topic, partition)] = offset - 1
        if at != len(raw):
            raise BadPosition("token has bytes after its end")
        return Position(offsets)

    # -- bounds -----------------------------------------------------------------------------
    def bound(self, text: str) -> Position:
        """``atLeast``: a token, or ``topic:partition:offset`` (comma separated for several),
        the metadata a producer gets back for its record."""
        text = text.strip()
        if not text:
            raise BadPosition("is empty")
        if len(text) > MAX_BOUND_CHARS:
            raise BadPosition(f"is longer than {MAX_BOUND_CHARS} characters")
        if ":" not in text:
            return self.decode(text)
        offsets: dict[TopicPartition, int] = {}
        for item in text.split(","):
            topic, partition, offset = self._triple(item.strip())
            offsets[(topic, partition)] = max(offsets.get((topic, partition), -1), offset)
        return Position(offsets)

    def _triple(self, item: str) -> tuple[str, int, int]:
        parts = item.rsplit(":", 2)
        if len(parts) != 3:
            raise BadPosition(f"{item[:100]!r} is not topic:partition:offset")
        topic, partition, offset = parts
        if not _TOPIC.fullmatch(topic):
            raise BadPosition(f"{topic[:100]!r} is not a topic name")
        if topic not in self.topics:
            raise BadPosition(
                f"{topic!r} is not a topic this app reads ({', '.join(sorted(self.topics))})"
            )
        if not _DIGITS.fullmatch(partition) or not _DIGITS.fullmatch(offset):
            raise BadPosition(f"{item[:100]!r}: partition and offset must be whole numbers")
        if int(offset) > MAX_OFFSET:
            raise BadPosition(f"{item[:100]!r}: offset out of range")
        self._check_partition(topic, int(partition))
        return topic, int(partition), int(offset)

    def _check_partition(self, topic: str, partition: int) -> None:
        count = self.topics[topic]
        if partition >= count:
            raise BadPosition(f"{topic} has {count} partitions; there is no {topic}[{partition}]")


def position_of(topic: str, offsets: Iterable[tuple[int, int]], committed: bool = True) -> Position:
    """A position over partitions of one topic: ``(partition, last offset)`` pairs."""
    return Position({(topic, p): o for p, o in offsets}, committed)
