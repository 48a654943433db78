"""``diff --shadow NAME``: the shadow's answers against the live ones, over the windows both
cover (``app.replay.compare``): hourly counts, weekly segment answers, insights.

Reads the committed topics of both apps, so it works whether or not their workers run. Exit
code 0 when nothing differs, 1 when something does, 2 when it cannot compare (no such shadow,
nothing comparable yet, a broker error).
"""

from __future__ import annotations

import sys

import click
import faust
from aiokafka.errors import KafkaError
from faust.cli import option

from app.commands._cli import fail
from app.replay.compare import Coverage, Limits, compare
from app.replay.manifest import BadManifest, read_manifest
from app.replay.report import json_document, text_lines
from app.replay.shadow import Shadow, ShadowError, check_name, describe_overrides
from app.replay.snapshot import MissingTopic, read_snapshot
from app.settings import Settings
from app.windows import iso_ms

DIFFERENT = 1


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--shadow", "name", required=True, metavar="NAME", help="The shadow to compare."),
        option("--json", "as_json", is_flag=True, default=False,
               help="One JSON document on stdout instead of text."),
        option("--limit", type=click.IntRange(min=0), default=100,
               help="Most differences printed as text."),
    )
    async def diff(self: faust.cli.AppCommand, name: str, as_json: bool, limit: int) -> None:
        """Compare a shadow's answers with the live ones; exit code 0 when none differ."""

        def say(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

        try:
            check_name(name)
            manifest = await read_manifest(
                settings.kafka_client_kwargs(), Shadow(name, settings).manifest_topic
            )
            if manifest is None:
                raise ShadowError(f"there is no shadow {name!r} of {settings.app_id}")
            shadow = Shadow(name, settings, manifest.overrides)
            shadow_settings = shadow.settings()
            say(f"reading the live answers ({settings.app_id})")
            live = await read_snapshot(settings, say)
            say(f"reading the shadow's answers ({shadow.app_id})")
            mirror = await read_snapshot(shadow_settings, say)
        except (ShadowError, BadManifest, MissingTopic) as exc:
            fail(str(exc))
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        coverage = Coverage(
            manifest.from_ms,
            settings.topic_partitions,
            live,
            mirror,
            Limits.from_settings(settings),
            Limits.from_settings(shadow_settings),
        )
        comparison = compare(live, mirror, coverage)
        same = sum(coverage.same_input(p) for p in range(settings.topic_partitions))
        if as_json:
            about = {
                "shadow": name,
                "appId": shadow.app_id,
                "liveAppId": settings.app_id,
                "from": iso_ms(manifest.from_ms),
                "overrides": manifest.overrides,
                "partitionsWithSameInput": same,
            }
            sys.stdout.buffer.write(json_document(comparison, about) + b"\n")
            sys.stdout.flush()
        else:
            header = [
                f"shadow {name} ({shadow.app_id}, from {iso_ms(manifest.from_ms)}, "
                f"{describe_overrides(manifest.overrides)}) against live ({settings.app_id})",
                f"same input taken on {same} of {settings.topic_partitions} partitions; hours from "
                f"{iso_ms(coverage.hour0)}, weeks from {iso_ms(coverage.week0)[:10]}, spikes "
                f"from {iso_ms(coverage.hour0 + coverage.baseline_hours * 3_600_000)}",
            ]
            if manifest.promoted_ms is not None:
                header.append(f"note: promoted at {iso_ms(manifest.promoted_ms)}")
            for line in text_lines(comparison, header, limit):
                print(line)
            sys.stdout.flush()
        if not sum(comparison.compared.values()):
            fail("nothing to compare yet: no window is final in both apps (let the shadow "
                 "catch up, or wait for windows to close)")
        if comparison.differences:
            raise SystemExit(DIFFERENT)
