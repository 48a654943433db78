"""Key layout of the state tables: each key an injective, order-preserving encoding of its parts.

Ids come from producers and may hold any character, the old separator 0x1F included, so a
key must never rely on a character that "does not appear in ids". A key is a sequence of
components, each of which says where it ends:

- text: the UTF-8 bytes (lone surrogates passed through) with every 0x00 written 0x00 0xFF,
  then the terminator 0x00 0x01. Inside a text a 0x00 is always followed by 0xFF, so the
  first 0x00 0x01 ends it, whatever the text holds;
- window start: 8 bytes, big-endian, of ``window_ms + 2**63``, so every 64-bit value
  (negative ones included) sorts in numeric order.

Keys are ``<family text> <window> <part text>...`` for windowed tables and
``<family text> <part text>...`` for the others. Because every component is prefix-free,
a key decodes to exactly one tuple (distinct ids never share a key) and byte order is the
order of the tuples: by family, then window, then parts in code point order. Window-first
keys make retention a range scan, and the range of a prefix tuple holds exactly the keys
that start with that tuple (segment ``a`` never reaches into segment ``ab``).

Families are code constants made of lowercase ASCII letters, never ids, and ``m`` is kept
for the stages' bookkeeping (``meta_key``): ids only ever fill the components after the
family, so they cannot produce a bookkeeping key, and no data key starts with 0x00, the
store's local-only namespace.
"""

from __future__ import annotations

import re
from typing import NamedTuple

META = "m"

_ESC = b"\x00\xff"
_END = b"\x00\x01"
_WINDOW_BYTES = 8
_WINDOW_BIAS = 1 << 63
_FAMILY_NAME = re.compile(r"[a-z]+")
_family_prefixes: dict[str, bytes] = {}
_heads: dict[tuple[str, int], bytes] = {}  # (family, window) -> their encoded components


class MalformedKey(ValueError):
    """Bytes that no call of this module produces."""


class WindowKey(NamedTuple):
    family: str
    window_ms: int
    parts: tuple[str, ...]


def encode_text(part: str) -> bytes:
    try:
        raw = part.encode()
    except UnicodeEncodeError:  # a lone surrogate: passed through
        raw = part.encode("utf-8", "surrogatepass")
    if b"\x00" in raw:
        raw = raw.replace(b"\x00", _ESC)
    return raw + _END


def _family(family: str) -> bytes:
    prefix = _family_prefixes.get(family)
    if prefix is None:
        if not _FAMILY_NAME.fullmatch(family):
            raise ValueError(f"key family {family!r} is not lowercase ASCII letters")
        prefix = _family_prefixes[family] = encode_text(family)
    return prefix


def _window(window_ms: int) -> bytes:
    try:
        return (window_ms + _WINDOW_BIAS).to_bytes(_WINDOW_BYTES, "big")
    except OverflowError:
        raise ValueError(f"window start {window_ms} does not fit in 64 bits") from None


def window_key(family: str, window_ms: int, *parts: str) -> bytes:
    head = _heads.get((family, window_ms))
    if head is None:
        if len(_heads) >= 4096:  # a handful of live windows per family: never reached in use
            _heads.clear()
        head = _heads[(family, window_ms)] = _family(family) + _window(window_ms)
    return b"".join((head, *map(encode_text, parts)))


def plain_key(family: str, *parts: str) -> bytes:
    """A key without a window (seen event ids, bookkeeping)."""
    return b"".join((_family(family), *map(encode_text, parts)))


def meta_key(name: str) -> bytes:
    """A stage's bookkeeping key (applied offset, stream time): out of every id's reach."""
    return plain_key(META, name)


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """[start, end) holding exactly the keys that start with ``prefix``."""
    stem = prefix.rstrip(b"\xff")
    if not stem:
        raise ValueError("a prefix of only 0xFF bytes has no upper bound")
    return prefix, stem[:-1] + bytes([stem[-1] + 1])


def family_range(family: str, before_ms: int | None = None) -> tuple[bytes, bytes]:
    """[start, end) covering a family's keys, or only its windows starting before ``before_ms``."""
    start, end = prefix_range(_family(family))
    if before_ms is None:
        return start, end
    return start, window_key(family, before_ms)


def window_prefix(family: str, window_ms: int, *parts: str) -> tuple[bytes, bytes]:
    """[start, end) of every key whose leading components are ``family, window, parts``."""
    return prefix_range(window_key(family, window_ms, *parts))


def split_key(key: bytes) -> WindowKey:
    """The exact inverse of ``window_key``; MalformedKey for bytes it cannot have produced."""
    family_end = key.find(_END)
    if family_end < 0:
        raise MalformedKey(f"no family in {key!r}")
    family = _decode_family(key[:family_end], key)
    window_start = family_end + len(_END)
    window = key[window_start : window_start + _WINDOW_BYTES]
    if len(window) != _WINDOW_BYTES:
        raise MalformedKey(f"no window in {key!r}")
    parts = _decode_texts(key, window_start + _WINDOW_BYTES)
    return WindowKey(family, int.from_bytes(window, "big") - _WINDOW_BIAS, parts)


def _decode_family(body: bytes, key: bytes) -> str:
    family = body.decode("ascii", "replace")
    if not _FAMILY_NAME.fullmatch(family):
        raise MalformedKey(f"no family in {key!r}")
    return family


def _decode_texts(key: bytes, start: int) -> tuple[str, ...]:
    texts = []
    while start < len(key):
        end = key.find(_END, start)
        if end < 0:
            raise MalformedKey(f"unterminated text in {key!r}")
        texts.append(_decode_text(key[start:end], key))
        start = end + len(_END)
    return tuple(texts)


def _decode_text(body: bytes, key: bytes) -> str:
    raw = body.replace(_ESC, b"\x00")
    if raw.count(b"\x00") != body.count(_ESC):  # a 0x00 that is neither escape nor terminator
        raise MalformedKey(f"unescaped 0x00 in {key!r}")
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        raise MalformedKey(f"not UTF-8 in {key!r}") from None
