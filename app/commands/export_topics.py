"""``export-topics [--output FILE]``: every product topic's partitions, replication and own
settings as JSON (``app.dr.topics``), for ``apply-topics`` on another cluster."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import faust
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.cli import option

from app.commands._cli import fail
from app.dr.topics import describe, document
from app.settings import Settings
from app.topics import topic_specs
from app.windows import iso_ms


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
               help="Write the JSON to this file [default: stdout]."),
    )
    async def export_topics(self: faust.cli.AppCommand, output: Path | None) -> None:
        """Write every product topic's partitions, replication and settings as JSON."""
        names = [spec.name for spec in topic_specs(settings)]
        admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
        try:
            await admin.start()
            try:
                states, _ = await describe(admin, names)
            finally:
                await admin.close()
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        missing = [name for name in names if name not in states]
        if missing:
            print(f"export-topics: not on the cluster, left out: {', '.join(missing)}",
                  file=sys.stderr)
        about = {
            "exportedAt": iso_ms(int(time.time() * 1000)),
            "bootstrapServers": settings.kafka_bootstrap_servers,
            "appId": settings.app_id,
        }
        raw = document((states[name] for name in names if name in states), about)
        if output is None:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
        else:
            output.write_bytes(raw)
            print(f"export-topics: {len(states)} topics written to {output}", file=sys.stderr)
