"""``property.views`` -> hourly and weekly tables, insights, dead letters, views-by-user."""

from __future__ import annotations

import faust

from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    # acks=False: faust never commits this topic's offsets; each partition's transaction
    # commits them together with the state they produced (see app.state.partitions).
    topic = app.topic(
        settings.views_topic, key_serializer="raw", value_serializer="raw", acks=False
    )

    @app.agent(topic, name="property_views")
    async def property_views(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_max_events, within=settings.batch_max_seconds
        ):
            await runtime.views.process_batch(events)
