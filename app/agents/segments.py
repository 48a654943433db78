"""views-by-user repartition topic -> exact unique users per (week, segment)."""

from __future__ import annotations

import faust

from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    # acks=False: offsets are committed inside each partition's transaction, as for views.
    topic = app.topic(
        settings.segments_repartition_topic, key_serializer="raw", value_serializer="raw", acks=False
    )

    @app.agent(topic, name="segment_users")
    async def segment_users(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_max_events, within=settings.batch_max_seconds
        ):
            await runtime.segments.process_batch(events)
