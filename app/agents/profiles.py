"""``user.profiles`` -> the profiles GlobalTable (``app.pipeline.profiles.ProfilesWriter``:
in offset order, invalid records to ``user.profiles.dlq``)."""

from __future__ import annotations

import faust

from app.runtime import Runtime


def register(app: faust.App, runtime: Runtime) -> None:
    source = app.topic(runtime.settings.profiles_topic, key_serializer="raw", value_serializer="raw")
    writer = runtime.profiles_writer

    @app.agent(source, name="user_profiles")
    async def user_profiles(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await writer.write(event.message)
