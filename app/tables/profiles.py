"""``profiles``: the viewers' profiles, a faust GlobalTable held whole on every worker.

Keys are userIds (UTF-8), values the profile's camelCase JSON bytes, exactly as served by
``GET /api/users/{userId}``. ``partitions=1`` and ``recovery_buffer_size=1`` follow the
GlobalTable docstring's advice against the infinite-recovery trap (FAUST_NOTES).
"""

from __future__ import annotations

import faust
import orjson

from app.settings import Settings


def create_profiles_table(app: faust.App, settings: Settings) -> faust.GlobalTable:
    return app.GlobalTable(
        "profiles",
        key_type=bytes,  # bytes -> the raw codec for keys and values, no JSON round trip
        value_type=bytes,
        partitions=settings.profiles_partitions,
        recovery_buffer_size=1,
        extra_topic_configs={"cleanup.policy": "compact"},
        options={
            "driver": "rocksdict",
            "block_cache_size": settings.rocksdb_block_cache_bytes,
            "write_buffer_size": settings.rocksdb_write_buffer_bytes,
        },
    )


class ProfileLookup:
    """A user's segment and stored profile, read from the GlobalTable."""

    def __init__(self, table: faust.GlobalTable) -> None:
        self._table = table

    def segment_of(self, user_id: str) -> str | None:
        raw = self._table.get(user_id.encode())
        if raw is None:
            return None
        return orjson.loads(raw).get("segment")

    def profile(self, user_id: str) -> bytes | None:
        return self._table.get(user_id.encode())
