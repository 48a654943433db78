"""Static membership of the consumer group (KIP-345): the ``group.instance.id`` a worker's
consumer joins with (``GROUP_INSTANCE_ID``).

aiokafka's consumer takes ``group_instance_id`` (JoinGroup v5, SyncGroup, Heartbeat and
OffsetCommit carry it, and a static member sends no LeaveGroup when it stops), and faust
passes its ``consumer_group_instance_id`` setting through to it. The coordinator then hands
a member that rejoins with its instance id within the session timeout its previous
assignment, without a rebalance: nobody else's partitions move.
"""

from __future__ import annotations

from collections.abc import Callable

AUTO = "auto"


def instance_id(setting: str | None, app_id: str, worker_id: Callable[[], str]) -> str | None:
    """None (dynamic membership) when unset; ``auto``: ``<APP_ID>-<worker id>`` (the id kept in
    the worker's data dir, ``app.engine.identity``: the same across restarts, another for every
    worker); else the setting as it is."""
    if setting is None:
        return None
    if setting == AUTO:
        return f"{app_id}-{worker_id()}"
    return setting
