"""What a replay started, kept in Kafka next to the shadow: ``<shadow app id>-replay``.

One record (key ``manifest``) in a compacted topic of one partition, written in the same
transaction as the shadow's start offsets. It is what ``diff`` and ``promote`` read to know
where the shadow started and with which settings, and what another ``replay`` of the same
shadow joins instead of starting it again (a second start would rewind its offsets under its
running workers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import orjson

from app.engine.committed import TopicNotFound, read_to_end

KEY = b"manifest"
FORMAT = 1


class BadManifest(ValueError):
    pass


@dataclass(frozen=True)
class Manifest:
    shadow: str
    app_id: str
    live_app_id: str
    views_topic: str
    from_ms: int
    # views partition -> the first offset the shadow reads (offsets_for_times of ``from_ms``)
    start_offsets: dict[int, int]
    # views partition -> the end offset when the replay started (the "live end" it catches up to)
    end_offsets: dict[int, int]
    overrides: dict[str, str] = field(default_factory=dict)
    created_ms: int = 0
    promoted_ms: int | None = None

    def to_bytes(self) -> bytes:
        doc = asdict(self)
        doc["format"] = FORMAT
        doc["start_offsets"] = {str(p): o for p, o in sorted(self.start_offsets.items())}
        doc["end_offsets"] = {str(p): o for p, o in sorted(self.end_offsets.items())}
        return orjson.dumps(doc)

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            doc = orjson.loads(raw)
            if doc.pop("format") != FORMAT:
                raise BadManifest(f"manifest format {doc.get('format')!r}, expected {FORMAT}")
            for name in ("start_offsets", "end_offsets"):
                doc[name] = {int(p): int(o) for p, o in doc[name].items()}
            doc["overrides"] = {str(k): str(v) for k, v in doc.get("overrides", {}).items()}
            manifest = cls(**doc)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadManifest(f"unreadable replay manifest: {exc}") from None
        if not isinstance(manifest.from_ms, int) or not isinstance(manifest.shadow, str):
            raise BadManifest("unreadable replay manifest: bad field types")
        return manifest

    def promoted(self, at_ms: int) -> Manifest:
        return replace(self, promoted_ms=at_ms)


async def read_manifest(client_kwargs: dict[str, Any], topic: str) -> Manifest | None:
    """The newest committed manifest on ``topic``; None when the topic or the record is missing."""
    latest: bytes | None = None
    try:
        async for records in read_to_end(client_kwargs, topic):
            latest = next((r.value for r in reversed(records) if r.key == KEY), latest)
    except TopicNotFound:
        return None
    return Manifest.from_bytes(latest) if latest is not None else None
