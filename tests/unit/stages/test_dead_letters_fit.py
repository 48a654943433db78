"""Each stage's dead-letter copy of a record larger than the dead-letter topic takes (a gzip
record of a few KiB on the wire that inflates to MiB): cut to fit with ``dlq.truncated`` and
``dlq.original.bytes``, and the partition goes on with the next record."""

from __future__ import annotations

import orjson

from app.engine.transactions import Outbox
from app.models.dead_letter import record_size
from app.settings import Settings
from app.stages.profile_rejects import ProfileRejectsProcessor
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.stages.views import ViewsConfig, ViewsProcessor

from .harness import Driver
from .test_properties_processor import H14, NOW, PropDriver, created

SETTINGS = Settings(dlq_max_message_bytes=200_000)  # small, so the test's bomb stays small
BOMB = b'{"pad": "' + b"x" * 600_000 + b'"}'


def copies(outbox: Outbox, topic: str) -> list[tuple[bytes | None, bytes | None, dict]]:
    return [(k, v, dict(h)) for k, v, h in outbox.records.get((topic, 0), [])]


def check_cut(key: bytes, copy: tuple, reason: bytes) -> None:
    got_key, value, headers = copy
    assert got_key == key and BOMB.startswith(value) and len(value) < len(BOMB)
    assert headers["dlq.reason"] == reason and headers["dlq.truncated"] == b"true"
    assert headers["dlq.original.bytes"] == str(len(BOMB)).encode()
    assert record_size(got_key, value, list(headers.items())) <= SETTINGS.dlq_max_message_bytes


def test_views(open_store):
    cfg = ViewsConfig.from_settings(SETTINGS)
    proc = ViewsProcessor(0, open_store("views"), Outbox(), cfg, {}.get)
    d = Driver(proc, NOW)
    d.send(BOMB, b"prop-1")
    d.view("v1", H14)
    [copy] = copies(proc.outbox, cfg.dlq_topic)
    check_cut(b"prop-1", copy, b"oversized")
    assert proc.outcomes["accepted"] == 1 and d.commit()


def test_property_events(open_store):
    cfg = PropertiesConfig.from_settings(SETTINGS)
    proc = PropertiesProcessor(0, open_store("props"), Outbox(), cfg)
    d = PropDriver(proc, NOW)
    d.send(BOMB, b"prop-1")
    created(d)
    [copy] = copies(proc.outbox, cfg.dlq_topic)
    check_cut(b"prop-1", copy, b"oversized")
    assert proc.table.state("prop-1").version == 1 and d.commit()


def test_profiles(open_store):
    outbox = Outbox()
    proc = ProfileRejectsProcessor(
        0, open_store("rejects"), outbox, source_topic="user.profiles",
        dlq_topic="user.profiles.dlq", max_bytes=SETTINGS.max_value_bytes,
        dlq_max_message_bytes=SETTINGS.dlq_max_message_bytes,
    )
    d = Driver(proc, NOW)
    d.send(BOMB, b"user-1")
    d.send(orjson.dumps({"userId": "user-2", "segment": "s\x85"}), b"user-2")  # a C1 control
    bomb, small = copies(outbox, "user.profiles.dlq")
    check_cut(b"user-1", bomb, b"oversized")
    assert small[2]["dlq.reason"] == b"bad_id" and "dlq.truncated" not in small[2]
    assert d.commit()
