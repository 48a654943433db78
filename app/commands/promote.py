"""``promote --shadow NAME``: make a shadow the live app (``app.replay.promote``).

Refuses unless the live app's workers and the shadow's are all stopped and the shadow has
caught up with the live app; then copies, in one transaction, what the live outputs lack of
the shadow's, marks the shadow promoted and prints the environment to start its workers with
as the live app. The procedure around it: docs/replay.md.
"""

from __future__ import annotations

import sys
import time

import faust
import orjson
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.cli import option

from app.commands._cli import fail
from app.engine.transactions import Fenced, Outbox, OutputRefused, write_once
from app.replay.manifest import KEY, BadManifest, read_manifest
from app.replay.promote import (
    Plan,
    dead_letters_after,
    in_warm_up,
    lagging,
    plan_insights,
    positions_of,
    routes,
)
from app.replay.shadow import Shadow, ShadowError, check_name
from app.replay.snapshot import MissingTopic, read_topic
from app.replay.worker import env_lines
from app.settings import Settings
from app.engine.partitioner import key_partition
from app.windows import iso_ms


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--shadow", "name", required=True, metavar="NAME", help="The shadow to promote."),
        option("--dry-run", is_flag=True, default=False,
               help="Check and print what would be copied; change nothing."),
    )
    async def promote(self: faust.cli.AppCommand, name: str, dry_run: bool) -> None:
        """Make a caught-up shadow the live app (all workers stopped): copy what the live
        outputs lack of its outputs, in one transaction."""
        kwargs = settings.kafka_client_kwargs()

        def say(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        try:
            check_name(name)
            manifest = await read_manifest(kwargs, Shadow(name, settings).manifest_topic)
            if manifest is None:
                raise ShadowError(f"there is no shadow {name!r} of {settings.app_id}")
            if manifest.promoted_ms is not None:
                raise ShadowError(f"shadow {name!r} was promoted at {iso_ms(manifest.promoted_ms)}")
            shadow = Shadow(name, settings, manifest.overrides)
            target = shadow.settings()
            problems, live_pos, shadow_pos = await _check(settings, target)
            if problems:
                raise ShadowError("cannot promote yet:\n  " + "\n  ".join(problems))
            plan = Plan()
            live_ids: set[str] = set()
            await read_topic(
                kwargs, settings.insights_topic,
                lambda r: live_ids.add(_insight_id(r.value)), say,
            )
            shadow_insights: list = []
            await read_topic(kwargs, target.insights_topic, shadow_insights.append, say)
            plan_insights(
                plan, live_ids, shadow_insights,
                lambda doc: in_warm_up(doc, manifest.from_ms, target.spike_baseline_hours),
                settings.insights_topic,
                lambda key: key_partition(key, settings.insights_partitions),
            )
            for route in routes(settings, target):
                letters: list = []
                await read_topic(kwargs, route.shadow_dlq, letters.append, say)
                for r in dead_letters_after(letters, live_pos.get(route.source, {})):
                    plan.dead_letters.append(
                        (route.live_dlq, r.partition, r.key, r.value, list(r.headers))
                    )
        except (ShadowError, BadManifest, MissingTopic) as exc:
            fail(str(exc))
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        print(
            f"promote {name}: {len(plan.insights)} insights to copy to {settings.insights_topic} "
            f"({plan.already_live} already there, {plan.warm_up_left} of the warm-up left out), "
            f"{len(plan.dead_letters)} dead letters to copy"
        )
        if dry_run:
            print("promote: dry run, nothing changed")
            return
        promoted = manifest.promoted(int(time.time() * 1000))
        try:
            await _publish(settings, shadow, plan, promoted.to_bytes())
        except (KafkaError, OutputRefused, Fenced) as exc:
            fail(f"the copy failed and was rolled back: {exc!r}")
        print(f"promote {name}: done. Start the workers of the live app with this environment")
        print("(the live one, without the shadow's INSIGHTS_TOPIC and *_DEAD_LETTER_TOPIC):")
        for line in env_lines({"APP_ID": shadow.app_id, **manifest.overrides}):
            print(f"  {line}")


def _insight_id(value: bytes | None) -> str:
    try:
        doc = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return ""
    insight_id = doc.get("insightId") if isinstance(doc, dict) else None
    return insight_id if isinstance(insight_id, str) else ""


async def _check(
    live: Settings, shadow: Settings
) -> tuple[list[str], dict[str, dict[int, int]], dict[str, dict[int, int]]]:
    """Problems that forbid promotion, and both groups' committed offsets per input topic."""
    admin = AIOKafkaAdminClient(**live.kafka_client_kwargs())
    await admin.start()
    try:
        problems = []
        for group_id in (live.app_id, shadow.app_id):
            # One group per request: aiokafka 0.14 fails to decode the broker's answer about
            # two groups at once ("Buffer underrun decoding string").
            for response in await admin.describe_consumer_groups([group_id]):
                for group in response.to_object()["groups"]:
                    if group["members"]:
                        problems.append(
                            f"group {group['group']} has {len(group['members'])} active "
                            "members: stop its workers first"
                        )
        inputs = [route.source for route in routes(live, shadow)]
        positions = {}
        for app_id in (live.app_id, shadow.app_id):
            committed = await admin.list_consumer_group_offsets(app_id)
            positions[app_id] = positions_of(committed, inputs)
    finally:
        await admin.close()
    live_pos, shadow_pos = positions[live.app_id], positions[shadow.app_id]
    problems += lagging(live_pos, shadow_pos, inputs)
    return problems, live_pos, shadow_pos


async def _publish(settings: Settings, shadow: Shadow, plan: Plan, manifest: bytes) -> None:
    """The plan's records and the promoted manifest, in one transaction."""
    outbox = Outbox()
    for topic, partition, key, value, headers in plan.records:
        outbox.add(topic, partition, key, value, headers)
    outbox.add(shadow.manifest_topic, 0, KEY, manifest)
    await write_once(
        f"{shadow.app_id}-promote", settings.kafka_client_kwargs(), outbox, {}, shadow.app_id,
        max_request_size=settings.dlq_max_message_bytes,
    )
