"""``user.profiles`` -> the profiles GlobalTable; invalid records -> ``user.profiles.dlq``."""

from __future__ import annotations

import logging

import faust
import orjson

from app import codec
from app.models.events import Rejection
from app.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    metrics = runtime.metrics
    table = runtime.profiles_table
    source = app.topic(settings.profiles_topic, key_serializer="raw", value_serializer="raw")
    dlq = app.topic(settings.dlq_profiles_topic, key_serializer="raw", value_serializer="raw")

    async def dead_letter(event: faust.EventT, rejection: Rejection) -> None:
        message = event.message
        log.warning(
            "%s[%d]@%d rejected: %s (%s)",
            message.topic,
            message.partition,
            message.offset,
            rejection.reason,
            rejection.detail,
        )
        await dlq.send(
            key=message.key,
            value=message.value,
            partition=message.partition,
            headers={
                "dlq.reason": rejection.reason.encode(),
                "dlq.detail": rejection.detail.encode()[:1024],
                "dlq.origin.topic": message.topic.encode(),
                "dlq.origin.partition": str(message.partition).encode(),
                "dlq.origin.offset": str(message.offset).encode(),
            },
        )
        metrics.events_rejected.labels(message.topic, rejection.reason).inc()

    @app.agent(source, name="user_profiles")
    async def user_profiles(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            metrics.events_consumed.labels(message.topic).inc()
            if message.value is None:  # tombstone: the user is deleted
                if message.key:
                    table.pop(message.key, None)
                    if runtime.profiles.startup is not None:
                        runtime.profiles.startup[message.key.decode()] = None
                continue
            profile = codec.decode_profile(message.value, max_bytes=settings.max_value_bytes)
            if isinstance(profile, Rejection):
                await dead_letter(event, profile)
                continue
            table[profile.user_id.encode()] = orjson.dumps(profile.to_wire())
