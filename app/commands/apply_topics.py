"""``apply-topics FILE [--check] [--replication-factor N]``: create the topics of an
``export-topics`` document that the cluster lacks, and check the others (``app.dr.topics``).

Exit code 0 when every topic is there as the document says, 1 when one differs (or, with
``--check``, is missing), 2 when the document or the cluster cannot be used. A
``min.insync.replicas`` above the replication factor applied is lowered to it, with a warning
on stderr (``app.dr.topics.fitted_configs``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import faust
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.cli import argument, option

from app.commands._cli import fail
from app.dr.topics import (
    CREATE,
    CREATED,
    DIFFERS,
    MISSING,
    BadDocument,
    create,
    describe,
    parse_document,
    plan,
)
from app.settings import Settings

MISMATCH = 1


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        argument("document", type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        option("--check", is_flag=True, default=False,
               help="Only compare; create nothing (missing topics are mismatches)."),
        option("--replication-factor", type=click.IntRange(min=1), default=None,
               help="Replication factor for this cluster instead of the exported one."),
    )
    async def apply_topics(
        self: faust.cli.AppCommand, document: Path, check: bool, replication_factor: int | None
    ) -> None:
        """Create the topics of an export-topics document on this cluster, check the others."""
        try:
            wanted = parse_document(document.read_bytes())
        except (BadDocument, OSError) as exc:
            fail(f"{document}: {exc}")
        admin = AIOKafkaAdminClient(**settings.kafka_client_kwargs())
        try:
            await admin.start()
            try:
                existing, effective = await describe(admin, [t.name for t in wanted])
                steps = plan(wanted, existing, effective, replication_factor, check)
                refused = await create(admin, [s.topic for s in steps if s.action == CREATE])
            finally:
                await admin.close()
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        for step in steps:
            if step.warning:
                print(f"warning: {step.topic.name}: {step.warning}", file=sys.stderr, flush=True)
        bad = 0
        for step in steps:
            topic = step.topic
            action = step.action
            detail = f"{topic.partitions} partitions, replication {topic.replication_factor}"
            if action == CREATE:
                if topic.name in refused:
                    action, detail = "refused", refused[topic.name]
                    bad += 1
                else:
                    action = CREATED
                    detail += "".join(f", {k}={v}" for k, v in sorted(topic.configs.items()))
            elif action == DIFFERS:
                detail = "; ".join(step.problems)
                bad += 1
            elif action == MISSING:
                bad += 1
            print(f"{action:<8} {topic.name}: {detail}")
        print(f"apply-topics: {len(steps)} topics, {bad} not as the document says"
              if bad else f"apply-topics: {len(steps)} topics as the document says")
        if bad:
            raise SystemExit(MISMATCH)
