"""One app's committed answers, read from its topics: what ``diff`` compares.

Read from Kafka, not asked over HTTP, so it works with the workers stopped (and reads
exactly what was committed, ``read_committed``):

- hourly counts, and each views partition's applied offset and stream time, from the views
  stage's compacted changelog (the last value of each key is the state);
- weekly segment answers from the segment shares topic, added up as every worker does;
- insights from the insights topic (one per insightId, the first copy);
- how far the unique-users stage is behind, from its group's offsets on views-by-user.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.engine.clients import committed_reader, partitions_of, stop_consumer
from app.engine.committed import TopicNotFound, read_to_end, records_between
from app.readmodels.partials import BadPartial, PartialsView, SegmentWeek
from app.settings import Settings
from app.engine.applied import APPLIED_KEY
from app.stages.views import STREAM_TIME_KEY
from app.tables.hourly import COUNTS
from app.tables.keys import MalformedKey, encode_text, split_key

log = logging.getLogger(__name__)

_HOURLY_PREFIX = encode_text(COUNTS)
_REPORT_EVERY = 200_000


class MissingTopic(RuntimeError):
    pass


@dataclass
class Snapshot:
    app_id: str
    # views partition -> (propertyId, hour start) -> (views, uniqueUsers)
    hourly: dict[int, dict[tuple[str, int], tuple[int, int]]] = field(default_factory=dict)
    applied: dict[int, int] = field(default_factory=dict)  # views partition -> last offset taken
    stream_time: dict[int, int] = field(default_factory=dict)  # views partition -> ms
    weekly: dict[tuple[str, int], SegmentWeek] = field(default_factory=dict)
    insights: dict[str, dict[str, Any]] = field(default_factory=dict)
    segments_behind: int = 0  # views-by-user records the unique-users stage has not committed
    unreadable: Counter[str] = field(default_factory=Counter)  # topic -> records skipped


class _Changelog:
    """Folds the views changelog into the snapshot, record by record."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def take(self, record: ConsumerRecord) -> None:
        key, value, partition = record.key, record.value, record.partition
        snap = self.snapshot
        if key is None:
            return
        if key.startswith(_HOURLY_PREFIX):
            try:
                _, hour, (prop,) = split_key(key)
            except (MalformedKey, ValueError):
                snap.unreadable[record.topic] += 1
                return
            counts = snap.hourly.setdefault(partition, {})
            if value is None:
                counts.pop((prop, hour), None)
                return
            try:
                views, users, *_ = orjson.loads(value)
                counts[(prop, hour)] = (int(views), int(users))
            except (orjson.JSONDecodeError, TypeError, ValueError):
                snap.unreadable[record.topic] += 1
        elif key in (APPLIED_KEY, STREAM_TIME_KEY) and value is not None:
            try:
                number = int(value)
            except ValueError:
                snap.unreadable[record.topic] += 1
                return
            (snap.applied if key == APPLIED_KEY else snap.stream_time)[partition] = number


def _take_insight(snapshot: Snapshot, record: ConsumerRecord) -> None:
    try:
        doc = orjson.loads(record.value) if record.value is not None else None
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("insightId"), str):
        snapshot.unreadable[record.topic] += 1
        return
    snapshot.insights.setdefault(doc["insightId"], doc)


async def read_topic(
    client_kwargs: dict[str, Any],
    topic: str,
    take: Callable[[ConsumerRecord], None],
    say: Callable[[str], None],
) -> int:
    """Hand every committed record of ``topic``, up to its end now, to ``take``; returns how
    many. MissingTopic if it does not exist."""
    count = reported = 0
    try:
        async for records in read_to_end(client_kwargs, topic, max_partition_fetch_bytes=4 << 20):
            for record in records:
                take(record)
            count += len(records)
            if count - reported >= _REPORT_EVERY:
                reported = count
                say(f"  {topic}: {count:,} records read")
    except TopicNotFound as exc:
        raise MissingTopic(str(exc)) from None
    return count


async def read_snapshot(settings: Settings, say: Callable[[str], None] = print) -> Snapshot:
    kwargs = settings.kafka_client_kwargs()
    snap = Snapshot(settings.app_id)
    changelog = _Changelog(snap)
    n = await read_topic(kwargs, settings.views_changelog_topic, changelog.take, say)
    say(f"  {settings.views_changelog_topic}: {n:,} records")

    partials = PartialsView()

    def take_partial(record: ConsumerRecord) -> None:
        try:
            if record.key is None:
                raise BadPartial("no key")
            partials.apply(record.key, record.value)
        except BadPartial:
            snap.unreadable[record.topic] += 1

    n = await read_topic(kwargs, settings.partials_topic, take_partial, say)
    say(f"  {settings.partials_topic}: {n:,} records")
    snap.weekly = {
        (segment, week): partials.segment_week(segment, week)
        for week in partials.weeks()
        for segment in partials.segments(week)
    }
    n = await read_topic(kwargs, settings.insights_topic, lambda r: _take_insight(snap, r), say)
    say(f"  {settings.insights_topic}: {n:,} records")
    snap.segments_behind = await _segments_behind(settings)
    return snap


async def _segments_behind(settings: Settings) -> int:
    """Records of views-by-user after the unique-users stage's committed offsets."""
    kwargs = settings.kafka_client_kwargs()
    topic = settings.segments_repartition_topic
    admin = AIOKafkaAdminClient(**kwargs)
    consumer = committed_reader(kwargs)
    await admin.start()
    await consumer.start()
    try:
        partitions = await partitions_of(consumer, topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        ends = await consumer.end_offsets(tps) if tps else {}
        committed = await admin.list_consumer_group_offsets(settings.app_id)
    finally:
        await stop_consumer(consumer)
        await admin.close()
    starts = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    return await records_between(kwargs, starts, ends) if ends else 0
