"""ProfileRejectsProcessor: every invalid ``user.profiles`` record goes to the DLQ once, with
its reason and origin; valid ones (and tombstones) only move the applied offset; a replay
after a crash publishes each dead letter once."""

from __future__ import annotations

import orjson
import pytest

from app import codec
from app.engine.applied import APPLIED_KEY
from app.stages.profile_rejects import ProfileRejectsProcessor
from app.engine.transactions import Outbox
from app.tables.profiles import SKIPPED, fold

from .harness import Driver

P = 0
NOW = 1_800_000_000_000
SOURCE, DLQ = "user.profiles", "user.profiles.dlq"
MAX = 64 * 1024
DLQ_LIMIT = 1024 * 1024 + 64 * 1024


def make_processor(store) -> ProfileRejectsProcessor:  # noqa: ANN001
    return ProfileRejectsProcessor(
        P, store, Outbox(), source_topic=SOURCE, dlq_topic=DLQ, max_bytes=MAX,
        dlq_max_message_bytes=DLQ_LIMIT,
    )


@pytest.fixture
def driver(open_store) -> Driver:
    return Driver(make_processor(open_store("rejects-000")), NOW)


def profile(user: str, segment: str = "investor") -> bytes:
    return orjson.dumps({"userId": user, "segment": segment})


HOSTILE = [
    (None, profile("u1"), codec.BAD_ID),
    (b"\xff\xfe", None, codec.BAD_ID),
    (b"\xffnext-offset:1", None, codec.BAD_ID),
    (b"other", profile("u1"), codec.KEY_MISMATCH),
    (b"u1", b'{"userId":"u1","segment":"s","profile":' + b'{"a":' * 40 + b"1" + b"}" * 41,
     codec.MALFORMED_JSON),
    (b"u1", b"{", codec.MALFORMED_JSON),
]


def test_invalid_records_are_dead_lettered_with_their_origin_and_valid_ones_are_not(driver):
    driver.send(profile("u0"), key=b"u0")
    driver.send(None, key=b"u0")  # a valid tombstone
    offsets = [driver.send(value, key=key) for key, value, _ in HOSTILE]
    assert driver.commit()

    assert [r.topic for r in driver.published] == [DLQ] * len(HOSTILE)
    for record, (key, value, reason), offset in zip(driver.published, HOSTILE, offsets, strict=True):
        headers = dict(record.headers)
        assert (record.key, record.value, record.partition) == (key, value, P)
        assert headers["dlq.reason"] == reason.encode()
        assert headers["dlq.origin.topic"] == SOURCE.encode()
        assert headers["dlq.origin.offset"] == str(offset).encode()
    assert driver.proc.outcomes[f"rejected:{codec.BAD_ID}"] == 3


def test_what_the_tables_skip_is_what_is_dead_lettered(driver):
    """Both sides classify with the same codec: every replica skips exactly these."""

    class Rec:
        def __init__(self, offset: int, key: bytes | None, value: bytes | None) -> None:
            self.partition, self.offset, self.key, self.value = P, offset, key, value

    sent = [(b"u0", profile("u0"))] + [(k, v) for k, v, _ in HOSTILE] + [(b"u9", None)]
    for key, value in sent:
        driver.send(value, key=key)
    driver.commit()
    skipped = fold([Rec(i, k, v) for i, (k, v) in enumerate(sent)], MAX).outcomes[SKIPPED]
    assert skipped == len(driver.published) == len(HOSTILE)


def test_the_applied_offset_is_the_only_state_and_a_replay_dead_letters_nothing_twice(
    driver, open_store
):
    driver.send(b"{", key=b"u1")
    driver.send(profile("u2"), key=b"u2")
    assert driver.commit()
    assert driver.proc.store.committed().get(APPLIED_KEY) == b"1"
    assert not driver.commit()  # nothing new: no transaction

    driver.send(b"[", key=b"u3")  # offset 2, then a crash before the commit
    driver.crash()
    driver.proc.store.close()

    again = Driver(make_processor(open_store("rejects-000")), NOW)
    assert again.proc.applied_offset == 1
    for offset, (key, value) in enumerate([(b"u1", b"{"), (b"u2", profile("u2")), (b"u3", b"[")]):
        again.proc.process(offset, key, value, NOW)  # faust re-delivers from the commit
    again.commit()
    assert [r.value for r in again.published] == [b"["]
    assert again.proc.outcomes["replayed"] == 2
