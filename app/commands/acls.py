"""``acls --principal User:<name>``: the ``kafka-acls.sh`` lines that give a principal the
least privileges a worker needs (``app.acls``), for a cluster whose authorizer denies what no
ACL allows. Prints, changes nothing: an administrator runs the lines."""

from __future__ import annotations

import click
import faust
from faust.cli import option

from app.acls import AclError, kafka_acls_commands, worker_acls
from app.commands._cli import fail
from app.settings import Settings


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--principal", required=True,
               help="Who the workers connect as: User:<SCRAM user>, or User:<certificate DN>."),
        option("--command-config", default="admin.properties", show_default=True,
               help="The administrator's client settings file the printed lines pass to "
                    "kafka-acls.sh ('' to leave it out)."),
        option("--topics-exist", is_flag=True, default=False,
               help="Leave out creating the named topics (create-topics was run by an "
                    "administrator); the <APP_ID>-* topics are still created by the workers."),
    )
    async def acls(
        self: faust.cli.AppCommand, principal: str, command_config: str, topics_exist: bool
    ) -> None:
        """Print the kafka-acls.sh lines granting a worker's least privileges."""
        try:
            lines = kafka_acls_commands(
                principal,
                worker_acls(settings, topics_exist=topics_exist),
                settings.kafka_bootstrap_servers,
                command_config or None,
            )
        except AclError as exc:
            fail(str(exc))
        click.echo(f"# least privileges of a worker with APP_ID={settings.app_id} for {principal}")
        for line in lines:
            click.echo(line)
