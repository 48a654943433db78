"""A stage's input topic -> batches -> ``StageRunner`` (views, and the segment-users stage)."""

from __future__ import annotations

import faust

from app.engine.runner import StageRunner
from app.settings import Settings


def register(app: faust.App, settings: Settings, stage: StageRunner, name: str) -> None:
    # acks=False: faust never commits this topic's offsets; each partition's transaction
    # commits them together with the state they produced (see app.engine.partitions).
    topic = app.topic(
        stage.owned.source_topic, key_serializer="raw", value_serializer="raw", acks=False
    )

    async def run(stream: faust.StreamT) -> None:
        async for events in stream.take_events(
            settings.batch_max_events, within=settings.batch_max_seconds
        ):
            await stage.process_batch(events)

    run.__name__ = run.__qualname__ = name
    app.agent(topic, name=name)(run)
