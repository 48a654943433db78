"""Where the standby copies go: faust's assignor, with each worker's standbys spread evenly.

faust's assignor places a partition's standby round robin by partition number, whoever is
active for it, so one worker may hold most of another's copies; when that other worker dies,
faust promotes a standby only while its holder has fewer than ceil(partitions / workers)
actives, and the rest move to workers without a copy (docs/internals.md). This assignor
keeps faust's actives, promotion and stickiness, and places the standbys again after them:
the partitions each worker is active for get their copies spread evenly over the other
workers, so that whichever worker dies, every survivor has room for the copies it holds of
that worker's partitions (with balanced actives), and all of them are promoted.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from faust.assignor.client_assignment import ClientMetadata
from faust.assignor.partition_assignor import PartitionAssignor


def spread_standbys(
    actives: Mapping[str, set[int]], previous: Mapping[str, set[int]], replicas: int
) -> dict[str, set[int]]:
    """Per client, the partitions it keeps standby copies of, given who is active for which
    (``actives``, every client of the topic, with or without partitions).

    Each partition gets ``min(replicas, clients - 1)`` copies, none on its active client. The
    partitions of one active client are dealt to the others by the load each would carry if
    that client died (its own actives plus the copies of that client's it was dealt so far,
    the least first, then the fewest copies in all): with balanced actives no survivor then
    holds more copies of a dead client's partitions than it has room to take over. Among
    equals a client that held the copy before (``previous``) keeps it, so its store needs
    only a tail.
    """
    clients = sorted(actives)
    copies = min(replicas, len(clients) - 1)
    out: dict[str, set[int]] = {client: set() for client in clients}
    if copies <= 0:
        return out
    for owner in clients:
        others = [c for c in clients if c != owner]
        dealt: Counter[str] = Counter()
        for _ in range(copies):
            for partition in sorted(actives[owner]):
                holder = min(
                    (c for c in others if partition not in out[c]),
                    key=lambda c: (
                        len(actives[c]) + dealt[c],
                        partition not in previous.get(c, ()),
                        len(out[c]),
                        c,
                    ),
                )
                out[holder].add(partition)
                dealt[holder] += 1
    return out


def room_after_loss(actives: Mapping[str, set[int]], standbys: Mapping[str, set[int]]) -> bool:
    """Whether, whichever client goes, each survivor can take every copy it holds of the lost
    client's partitions within faust's capacity (ceil(partitions / survivors))."""
    total = sum(len(parts) for parts in actives.values())
    for lost in actives:
        survivors = [c for c in actives if c != lost]
        if not survivors:
            continue
        capacity = math.ceil(total / len(survivors))
        for client in survivors:
            if len(actives[client]) + len(standbys[client] & actives[lost]) > capacity:
                return False
    return True


class StandbyAssignor(PartitionAssignor):
    """faust's ``PartitionAssignor``; its standby placement replaced by ``spread_standbys``.

    It places ``app.standby_replicas`` copies when the app sets it (``app.main``): faust's
    ``table_standby_replicas`` cannot be 0 there, or faust's consumer would not use this
    assignor at all (docs/internals.md)."""

    def __init__(self, app, replicas: int = 0) -> None:  # noqa: ANN001 - faust's signature
        super().__init__(app, replicas=getattr(app, "standby_replicas", replicas))

    def _perform_assignment(self, cluster, member_metadata):  # noqa: ANN001, ANN202 - faust's signature
        answers = super()._perform_assignment(cluster, member_metadata)
        previous = {
            member: self._get_client_metadata(metadata).assignment
            for member, metadata in member_metadata.items()
        }
        decoded = {
            member: ClientMetadata.loads(self._decompress(answer.user_data))
            for member, answer in answers.items()
        }
        changelogs = self._table_manager.changelog_topics  # faust's tables: left as faust made them
        topics = {t for d in decoded.values() for t in d.assignment.actives} - set(changelogs)
        for topic in sorted(topics):
            actives = {
                member: set(d.assignment.actives[topic])
                for member, d in decoded.items()
                if topic in d.assignment.actives
            }
            before = {m: set(previous[m].standbys.get(topic, ())) for m in actives if m in previous}
            for member, partitions in spread_standbys(actives, before, self.replicas).items():
                decoded[member].assignment.standbys[topic] = sorted(partitions)
        return {
            member: ConsumerProtocolMemberAssignment(
                answer.version, answer.assignment, self._compress(decoded[member].dumps())
            )
            for member, answer in answers.items()
        }
