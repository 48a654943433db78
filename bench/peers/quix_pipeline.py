"""The product's aggregations written idiomatically with Quix Streams: the benchmark's peer.

    python -m bench.peers.quix_pipeline      # configured by the environment below

Reads the same ``property.views`` and ``user.profiles`` topics and computes, in event time:
- hourly per property (tumbling 1 h, grace 15 min): ``views`` and exact ``uniqueUsers``;
- weekly per segment (tumbling ISO week, grace 1 h, after ``group_by`` segment): ``views``,
  exact ``uniqueUsers`` and the 10 most viewed properties.
The segment comes from a table of profiles that every instance holds whole, loaded from the
compacted profiles topic before processing starts and kept up to date by a tailing consumer
(the product's profiles table). Windows emit every update (``.current()``) to
``<prefix>-hourly`` / ``<prefix>-weekly``, so answers are live as the product's are; window
and step state is RocksDB with changelog topics.

Exact unique counts follow the usual streaming pattern: a stateful step keyed like the window
marks the first view of each (window, user), and the window sums the marks.

Why not ``join_asof`` with the profiles as a stream: it needs co-partitioned sides (the
product's profiles topic has one partition, so a repartitioned copy would be needed) and it
turns on Quix's cross-topic time alignment; a whole table per instance is also what the
product does (its global profiles table).

Left out, compared with the product: validation and dead letters, dedupe by eventId,
insights, retention of the first-view marks. The benchmark's workload has none of these
cases, so the answers must be equal.

Environment: KAFKA_BOOTSTRAP_SERVERS, VIEWS_TOPIC, PROFILES_TOPIC, QUIX_GROUP,
QUIX_STATE_DIR, QUIX_OUTPUT_PREFIX, QUIX_GUARANTEE (at-least-once | exactly-once),
QUIX_COMMIT_INTERVAL (seconds), TOPIC_PARTITIONS (for the output topics).
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from quixstreams import Application, State
from quixstreams.dataframe.windows import Count, Last, Sum
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import TopicConfig

from app.settings import Settings
from app.settings_errors import settings_or_exit
from bench.peers.quix_connection import connection_options
from app.windows import DAY_MS, hour_start, parse_iso, week_start

# Quix windows start at whole multiples of their length since the epoch, a Thursday; ISO
# weeks start on Monday. The weekly window runs on time shifted back 4 days, and its window
# bounds are shifted forward again on the way out.
WEEK_SHIFT_MS = 4 * DAY_MS
TOP_N = 10
UNKNOWN_SEGMENT = "unknown"


def view_time(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    return parse_iso(value["timestamp"])


class ProfileTable:
    """userId -> segment for every user, held whole: loaded to the end of the profiles topic
    before processing starts, then kept current by a background consumer (tombstones delete)."""

    def __init__(self, connection: ConnectionConfig, topic: str) -> None:
        self._segments: dict[str, str] = {}
        self._consumer = Consumer(
            {**connection.as_librdkafka_dict(), "group.id": "unused", "enable.auto.commit": False}
        )
        metadata = self._consumer.list_topics(topic, timeout=30)
        partitions = sorted(metadata.topics[topic].partitions)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._ends = {p: self._consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in partitions}

    def get(self, user_id: str) -> str | None:
        return self._segments.get(user_id)

    def _apply(self, message: Any) -> None:
        key = message.key().decode() if message.key() else None
        if key is None:
            return
        value = message.value()
        if value is None:
            self._segments.pop(key, None)
            return
        try:
            segment = orjson.loads(value).get("segment")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if isinstance(segment, str):
            self._segments[key] = segment

    def load(self) -> int:
        remaining = {p for p, end in self._ends.items() if end > 0}
        while remaining:
            message = self._consumer.poll(1.0)
            if message is None or message.error():
                continue
            self._apply(message)
            if message.offset() >= self._ends[message.partition()] - 1:
                remaining.discard(message.partition())
        return len(self._segments)

    def follow(self) -> None:
        def run() -> None:
            while True:
                message = self._consumer.poll(1.0)
                if message is not None and not message.error():
                    self._apply(message)

        threading.Thread(target=run, name="profiles-tail", daemon=True).start()


def first_in_hour(view: dict, key: str, timestamp: int, headers: Any, state: State) -> dict:
    """Keyed by property: 1 for the first view of a user in this hour, else 0."""
    mark = f"{hour_start(timestamp)}:{view['userId']}"
    first = state.get(mark) is None
    if first:
        state.set(mark, 1)
    return {"firstInHour": int(first)}


def weekly_step(view: dict, key: str, timestamp: int, headers: Any, state: State) -> dict:
    """Keyed by segment: the user's first view this week, and the week's top 10 properties
    (views desc, id asc).

    Counts only grow, so a property can only enter the top 10 on its own view: comparing it
    with the current tenth keeps the list exact in O(1) per view.
    """
    week = week_start(timestamp)
    user_mark = f"{week}:u:{view['userId']}"
    first = state.get(user_mark) is None
    if first:
        state.set(user_mark, 1)
    prop = view["propertyId"]
    count_key = f"{week}:p:{prop}"
    views = state.get(count_key, 0) + 1
    state.set(count_key, views)
    top_key = f"{week}:top"
    top = [row for row in state.get(top_key, []) if row[0] != prop]
    if len(top) < TOP_N or (-views, prop) < (-top[-1][1], top[-1][0]):
        top.append([prop, views])
        top.sort(key=lambda row: (-row[1], row[0]))
        del top[TOP_N:]
        state.set(top_key, top)
    else:
        top = state.get(top_key)
    return {"firstInWeek": int(first), "top": top}


def unshift_week(window: dict) -> dict:
    return {**window, "start": window["start"] + WEEK_SHIFT_MS, "end": window["end"] + WEEK_SHIFT_MS}


def build(app: Application, env: dict[str, str], profiles: ProfileTable) -> None:
    partitions = int(env.get("TOPIC_PARTITIONS", "12"))
    prefix = env["QUIX_OUTPUT_PREFIX"]
    out_config = TopicConfig(num_partitions=partitions, replication_factor=1)
    views = app.topic(
        env["VIEWS_TOPIC"], key_deserializer="str", value_deserializer="json", timestamp_extractor=view_time
    )
    hourly_out = app.topic(f"{prefix}-hourly", key_serializer="str", value_serializer="json", config=out_config)
    weekly_out = app.topic(f"{prefix}-weekly", key_serializer="str", value_serializer="json", config=out_config)

    sdf = app.dataframe(views)
    sdf = sdf[["propertyId", "userId"]]

    hourly = sdf.apply(first_in_hour, stateful=True, metadata=True)
    hourly = (
        hourly.tumbling_window(timedelta(hours=1), grace_ms=timedelta(minutes=15), name="hourly-property")
        .agg(views=Count(), uniqueUsers=Sum("firstInHour"))
        .current()
    )
    hourly.to_topic(hourly_out)

    weekly = sdf.apply(
        lambda view: {**view, "segment": profiles.get(view["userId"]) or UNKNOWN_SEGMENT}
    )
    weekly = weekly.group_by("segment", name="views-by-segment")
    weekly = weekly.apply(weekly_step, stateful=True, metadata=True)
    weekly = weekly.set_timestamp(lambda value, key, timestamp, headers: timestamp - WEEK_SHIFT_MS)
    weekly = (
        weekly.tumbling_window(timedelta(days=7), grace_ms=timedelta(hours=1), name="weekly-segment")
        .agg(views=Count(), uniqueUsers=Sum("firstInWeek"), top=Last("top"))
        .current()
    )
    weekly = weekly.apply(unshift_week)
    weekly.to_topic(weekly_out)


def connection_config(settings: Settings) -> ConnectionConfig:
    """The product's connection settings in librdkafka's terms (``quix_connection``)."""
    return ConnectionConfig(**connection_options(settings))


def main() -> None:
    env = dict(os.environ)
    log = logging.getLogger("quix_pipeline")
    logging.basicConfig(level=logging.INFO)
    connection = connection_config(settings_or_exit())
    profiles = ProfileTable(connection, env["PROFILES_TOPIC"])
    log.info("profiles loaded: %d users", profiles.load())
    profiles.follow()
    app = Application(
        broker_address=connection,
        consumer_group=env["QUIX_GROUP"],
        auto_offset_reset="earliest",
        state_dir=env["QUIX_STATE_DIR"],
        processing_guarantee=env.get("QUIX_GUARANTEE", "at-least-once"),
        commit_interval=float(env.get("QUIX_COMMIT_INTERVAL", "1.0")),
        loglevel=env.get("QUIX_LOGLEVEL", "INFO"),
    )
    build(app, env, profiles)
    app.run()


if __name__ == "__main__":
    main()
