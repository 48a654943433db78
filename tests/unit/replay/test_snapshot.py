"""Reading an app's committed answers from its views changelog: the last value of each key,
deletes honoured, bookkeeping read, records it cannot read counted and left out."""

from __future__ import annotations

from dataclasses import dataclass

from app.replay.snapshot import Snapshot, _Changelog, _take_insight
from app.engine.applied import APPLIED_KEY
from app.stages.views import STREAM_TIME_KEY
from app.tables.hourly import COUNTS, USERS, HourlyCounts
from app.tables.keys import window_key


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    partition: int = 0
    topic: str = "changelog"


def test_the_last_value_of_each_key_is_the_state():
    snap = Snapshot("x")
    fold = _Changelog(snap)
    hour = 3_600_000 * 10
    for record in [
        Record(window_key(COUNTS, hour, "p1"), HourlyCounts(1, 1).to_bytes()),
        Record(window_key(COUNTS, hour, "p1"), HourlyCounts(5, 2, True).to_bytes()),
        Record(window_key(COUNTS, hour, "p2"), HourlyCounts(3, 3).to_bytes()),
        Record(window_key(COUNTS, hour, "p2"), None),  # expired
        Record(window_key(USERS, hour, "p1", "u1"), b""),  # markers are not answers
        Record(APPLIED_KEY, b"41"),
        Record(STREAM_TIME_KEY, b"%d" % (hour + 5)),
        Record(APPLIED_KEY, b"42"),
        Record(None, b"x"),
    ]:
        fold.take(record)
    assert snap.hourly == {0: {("p1", hour): (5, 2)}}
    assert (snap.applied, snap.stream_time) == ({0: 42}, {0: hour + 5})
    assert not snap.unreadable


def test_unreadable_records_are_counted_not_fatal():
    snap = Snapshot("x")
    fold = _Changelog(snap)
    fold.take(Record(window_key(COUNTS, 0, "p"), b"not json"))
    fold.take(Record(APPLIED_KEY, b"forty"))
    _take_insight(snap, Record(b"k", b"[1, 2]", topic="insights"))
    _take_insight(snap, Record(b"k", b'{"insightId": "a", "type": "t"}', topic="insights"))
    _take_insight(snap, Record(b"k", b'{"insightId": "a", "type": "second copy"}', topic="insights"))
    assert snap.unreadable == {"changelog": 2, "insights": 1}
    assert snap.insights == {"a": {"insightId": "a", "type": "t"}}
