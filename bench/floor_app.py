"""Stage b, the framework floor: ``faust -A bench.floor_app worker``, an agent that does nothing.

Configured from the product's Settings (same environment, same consumer and buffer settings),
raw bytes in, nothing out. It counts events and exposes the count at ``GET /bench/floor``.
``BENCH_FLOOR_MODE``: ``events`` (plain iteration over ``stream.events()``, the default: the
fastest honest no-op measured) or ``take_events`` (batches, as the product consumes).
"""

from __future__ import annotations

import os
import time

import faust
from faust.web import Request, Response, View

from app.settings_errors import settings_or_exit

settings = settings_or_exit()
MODE = os.environ.get("BENCH_FLOOR_MODE", "events")
# faust's consumer as the worker tuned it while its stages took their records from faust:
MAX_POLL_RECORDS = 5000
STREAM_BUFFER_MAXSIZE = 20000
TAKE_WITHIN_S = 0.05

app = faust.App(
    settings.app_id,
    broker="kafka://" + ";".join(s.strip() for s in settings.kafka_bootstrap_servers.split(",")),
    broker_credentials=settings.faust_credentials(),
    datadir=str(settings.data_dir),
    web_host=settings.worker_web_host,
    web_port=settings.worker_web_port,
    web_bind=settings.worker_web_host,
    web_tables_enabled=False,
    topic_partitions=settings.topic_partitions,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=settings.commit_interval_seconds,
    broker_max_poll_records=MAX_POLL_RECORDS,
    consumer_max_fetch_size=settings.max_fetch_bytes,
    stream_buffer_maxsize=STREAM_BUFFER_MAXSIZE,
)
views = app.topic(settings.views_topic, key_serializer="raw", value_serializer="raw")
stats: dict[str, float | int | None] = {"count": 0, "first": None, "atFirst": 0, "last": None}


@app.agent(views, name="noop")
async def noop(stream: faust.StreamT) -> None:
    if MODE == "take_events":
        async for events in stream.take_events(
            settings.batch_max_events, within=TAKE_WITHIN_S
        ):
            _seen(len(events))
    else:
        async for _event in stream.events():
            _seen(1)


def _seen(n: int) -> None:
    now = time.time()
    if stats["first"] is None:
        stats["first"], stats["atFirst"] = now, n
    stats["count"] += n
    stats["last"] = now


@app.page("/bench/floor")
class FloorStats(View):
    async def get(self, request: Request) -> Response:
        return self.json({**stats, "mode": MODE})
