"""A stage: faust assigns its topic's partitions, the stage reads and applies them itself.

faust subscribes to the topic for the agent declared here, so that the group assigns its
partitions to the workers, but the agent never receives a record: the stage's own reader
fetches the partitions it has opened (``app.engine.reader``) and faust's consumer leaves
them alone (``app.engine.faust_fixes.leave_to_stages``).
"""

from __future__ import annotations

import faust

from app.engine.runner import StageRunner


def register(app: faust.App, stage: StageRunner, name: str) -> None:
    # acks=False: faust never commits this topic's offsets; the stage's commit rounds commit
    # them together with the state they produced (see app.engine.partitions).
    topic = app.topic(
        stage.owned.source_topic, key_serializer="raw", value_serializer="raw", acks=False
    )

    async def subscribe(stream: faust.StreamT) -> None:
        async for _ in stream.events():  # nothing arrives: see the module's docstring
            pass

    subscribe.__name__ = subscribe.__qualname__ = name
    app.agent(topic, name=name)(subscribe)

    async def run() -> None:
        await stage.run()

    run.__name__ = run.__qualname__ = f"{name}_reader"
    app.task(run)
