"""Key layout shared by the state tables: ``<family>|<window start ms, 13 digits>|<parts>``.

Window-first keys make retention a range scan. The separator is the ASCII unit separator,
which never appears in ids.
"""

from __future__ import annotations

SEP = "\x1f"
_SEP_B = SEP.encode()


def window_key(family: str, window_ms: int, *parts: str) -> bytes:
    return SEP.join((family, f"{window_ms:013d}", *parts)).encode()


def family_range(family: str, before_ms: int | None = None) -> tuple[bytes, bytes]:
    """[start, end) covering a family's keys, or only its windows starting before ``before_ms``."""
    start = (family + SEP).encode()
    if before_ms is None:
        return start, (family + chr(ord(SEP) + 1)).encode()
    return start, window_key(family, before_ms)


def window_prefix(family: str, window_ms: int, *parts: str) -> tuple[bytes, bytes]:
    """[start, end) of every key under ``family|window|parts...|``."""
    prefix = window_key(family, window_ms, *parts) + _SEP_B
    return prefix, prefix[:-1] + bytes([_SEP_B[0] + 1])


def split_key(key: bytes) -> list[str]:
    return key.decode().split(SEP)
