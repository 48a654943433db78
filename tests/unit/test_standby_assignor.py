"""What faust's assignor gives for standbys with the stages' source topics (docs/internals.md):
the standby keeper (``app.engine.standby``) relies on it, so these fail when faust changes it.

faust computes standbys for every copartitioned group of subscribed topics, not only for its
tables' changelogs: each member's assignment (its user data) lists standby partitions of the
stages' source topics, disjoint from its actives, one holder per partition and replica; the
partitions it consumes (the Kafka protocol assignment) leave them out; and when a member goes,
each of its partitions goes to the member that held its standby if that member has room
(at most ceil(partitions / members) actives), elsewhere otherwise.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata
from faust.assignor.client_assignment import ClientAssignment, ClientMetadata
from faust.assignor.partition_assignor import PartitionAssignor
from hypothesis import given, strategies as st

from app.engine.standby_assignor import StandbyAssignor, room_after_loss, spread_standbys

from app.main import AnalyticsApp, create_app
from app.settings import Settings

PARTITIONS = 12


class _Cluster:
    def __init__(self, partitions: dict[str, int]) -> None:
        self._partitions = partitions

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self._partitions.get(topic, 0)))


def _apps(
    tmp_path: Path, members: list[str], replicas: int, assignor: type = PartitionAssignor
) -> dict[str, AnalyticsApp]:
    """Apps whose assignor is ``assignor`` (faust's own by default: what faust does)."""
    apps = {
        member: create_app(
            Settings(
                data_dir=tmp_path / member,
                app_id="standby-assignor",
                worker_web_port=6066 + i,
                standby_replicas=replicas,
            )
        )
        for i, member in enumerate(members)
    }
    for app in apps.values():
        app.assignor = assignor(app, replicas=replicas)
    return apps


def _sources(app: AnalyticsApp) -> dict[str, int]:
    """The stages' source topics with the partition counts the settings give them."""
    s = app.runtime.settings
    return {
        stage.owned.source_topic: (
            s.profiles_partitions if stage.owned.source_topic == s.profiles_topic
            else s.topic_partitions
        )
        for stage in app.runtime.stages
    }


def _assign(
    apps: dict[str, AnalyticsApp], previous: dict[str, ClientAssignment]
) -> dict[str, ClientAssignment]:
    """One rebalance as the group leader runs it, then each member's side of it; returns each
    member's assignment as faust hands it to that member."""
    leader = next(iter(apps.values()))
    topics = _sources(leader)
    metadata = {
        member: ConsumerProtocolMemberMetadata(
            4,
            sorted(topics),
            ClientMetadata(
                assignment=previous.get(member, ClientAssignment(actives={}, standbys={})),
                url=str(app.conf.canonical_url),
                changelog_distribution={},
            ).dumps(),
        )
        for member, app in apps.items()
    }
    answers = leader.assignor.assign(_Cluster(topics), metadata)
    out = {}
    for member, answer in answers.items():
        apps[member].assignor.on_assignment(answer)  # the member's side: faust's own checks
        consumed = dict(answer.assignment)
        mine = ClientMetadata.loads(zlib.decompress(answer.user_data)).assignment
        # faust consumes the actives only: standbys of a topic that is no faust table's
        # changelog are never fetched by its consumer
        assert {t: sorted(p) for t, p in consumed.items()} == {
            t: sorted(p) for t, p in mine.actives.items()
        }
        out[member] = mine
    return out


def _standbys(apps: dict[str, AnalyticsApp], topic: str) -> dict[str, set[int]]:
    return {
        member: {tp.partition for tp in app.assignor.assigned_standbys() if tp.topic == topic}
        for member, app in apps.items()
    }


def _actives(assignment: dict[str, ClientAssignment], topic: str) -> dict[str, set[int]]:
    return {member: set(a.actives.get(topic, ())) for member, a in assignment.items()}


def test_faust_places_one_standby_per_partition_of_every_stage_topic_on_another_worker(
    tmp_path: Path,
) -> None:
    apps = _apps(tmp_path, ["a", "b", "c"], replicas=1)
    assert all(app.assignor.replicas == 1 for app in apps.values())  # STANDBY_REPLICAS
    assignment = _assign(apps, {})
    for topic, count in _sources(apps["a"]).items():
        actives = _actives(assignment, topic)
        standbys = _standbys(apps, topic)
        assert sorted(p for held in actives.values() for p in held) == list(range(count))
        assert sorted(p for held in standbys.values() for p in held) == list(range(count))
        for member in apps:
            assert not actives[member] & standbys[member]
    # The stages of one partition count stay together, actives and standbys (copartitioned):
    # a worker holds partition p of the views and of the properties they read, or neither.
    s = apps["a"].runtime.settings
    assert _standbys(apps, s.views_topic) == _standbys(apps, s.property_events_topic)
    assert _standbys(apps, s.views_topic) == _standbys(apps, s.segments_repartition_topic)


def test_faust_gives_a_dead_members_partitions_to_their_standby_holders(tmp_path: Path) -> None:
    apps = _apps(tmp_path, ["a", "b", "c"], replicas=1)
    first = _assign(apps, {})
    topic = apps["a"].runtime.settings.views_topic
    holder = {p: m for m, held in _standbys(apps, topic).items() for p in held}
    lost = set(first["a"].actives[topic])
    assert len(lost) == PARTITIONS // 3

    survivors = {m: apps[m] for m in ("b", "c")}
    second = _assign(survivors, {m: first[m] for m in survivors})
    actives = _actives(second, topic)
    capacity = -(-PARTITIONS // len(survivors))  # ceil: faust's max_capacity
    promoted = {p for p in lost if p in actives[holder[p]]}
    for partition in lost - promoted:  # only when its holder had no room left
        assert len(actives[holder[partition]]) == capacity, (partition, holder, actives)
    for member in survivors:  # and the survivors keep their own
        assert set(first[member].actives[topic]) <= actives[member]
    # faust spreads the standbys round robin by partition, not by the worker active for them:
    # here one survivor held three of the dead worker's four, room for two, so one of them
    # moves to a worker without a copy and is restored in full.
    assert len(promoted) == 3, (first, second)
    # Two workers left: every partition still has a standby, on the worker not active for it.
    standbys = _standbys(survivors, topic)
    for member in survivors:
        assert standbys[member] == set(range(PARTITIONS)) - actives[member]


def test_no_standbys_with_one_worker_or_with_standby_replicas_0(tmp_path: Path) -> None:
    alone = _apps(tmp_path / "alone", ["a"], replicas=1)
    _assign(alone, {})
    none = _apps(tmp_path / "none", ["a", "b", "c"], replicas=0)
    _assign(none, {})
    ours = _apps(tmp_path / "ours", ["a", "b", "c"], replicas=0, assignor=StandbyAssignor)
    _assign(ours, {})
    for apps in (alone, none, ours):
        assert all(app.assignor.assigned_standbys() == set() for app in apps.values())


async def test_faust_drops_its_assignor_at_0_standby_replicas_so_the_app_never_gives_it_0(
    tmp_path: Path,
) -> None:
    """faust's consumer uses aiokafka's round robin when ``table_standby_replicas`` is 0 and
    the app has no faust table: no copartitioning (a views partition without its properties
    partition) and no map of who owns what (requests for another worker's partitions got 503
    in the failover bench). So faust is always given at least 1, and ``StandbyAssignor``
    places ``STANDBY_REPLICAS`` copies itself."""
    app = create_app(Settings(data_dir=tmp_path, app_id="standby-assignor", standby_replicas=0))
    assert app.conf.table_standby_replicas == 1 and app.assignor.replicas == 0
    thread = app.consumer._thread
    consumers = [thread._create_worker_consumer(thread.transport)]
    try:
        assert thread._assignor is app.assignor  # ours, with no standbys to place
        app.conf.table_standby_replicas = 0
        consumers.append(thread._create_worker_consumer(thread.transport))
        assert thread._assignor is RoundRobinPartitionAssignor  # faust at 0
    finally:
        for consumer in consumers:
            await consumer.stop()


# -- the product's assignor: faust's, with the standbys spread (app.engine.standby_assignor) --


def test_the_apps_assignor_is_the_one_that_spreads_standbys(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, app_id="standby-assignor"))
    assert type(app.assignor) is StandbyAssignor and app.assignor.replicas == 1


@pytest.mark.parametrize("dead", ["a", "b", "c"])
def test_with_spread_standbys_every_partition_of_a_dead_worker_is_promoted(
    tmp_path: Path, dead: str
) -> None:
    apps = _apps(tmp_path, ["a", "b", "c"], replicas=1, assignor=StandbyAssignor)
    first = _assign(apps, {})
    topics = _sources(apps["a"])
    holders = {topic: {p: m for m, held in _standbys(apps, topic).items() for p in held} for topic in topics}
    survivors = {m: apps[m] for m in apps if m != dead}
    second = _assign(survivors, {m: first[m] for m in survivors})
    for topic in topics:
        actives, after = _actives(first, topic), _actives(second, topic)
        for partition in actives[dead]:
            assert partition in after[holders[topic][partition]], (topic, partition, holders, after)


def test_spread_standbys_example() -> None:
    actives = {"a": {0, 3, 6, 9}, "b": {1, 4, 7, 10}, "c": {2, 5, 8, 11}}
    # faust's own placement put three of a's four copies on b
    previous = {"a": {2, 11, 4, 5}, "b": {0, 8, 3, 6}, "c": {9, 10, 1, 7}}
    spread = spread_standbys(actives, previous, 1)
    # two copies of each worker's partitions on each of the others, those held before kept
    # where that stays even
    assert spread == {"a": {4, 10, 2, 11}, "b": {0, 6, 5, 8}, "c": {3, 9, 1, 7}}
    assert room_after_loss(actives, spread) and not room_after_loss(actives, previous)


@st.composite
def _layouts(draw):  # noqa: ANN202
    clients = draw(st.integers(1, 6))
    partitions = draw(st.integers(1, 40))
    owner = draw(st.lists(st.integers(0, clients - 1), min_size=partitions, max_size=partitions))
    actives = {f"c{i}": {p for p in range(partitions) if owner[p] == i} for i in range(clients)}
    previous = {
        c: set(draw(st.lists(st.integers(0, partitions - 1), max_size=partitions))) for c in actives
    }
    return actives, previous, draw(st.integers(0, 4))


def _balanced(actives: dict[str, set[int]]) -> dict[str, set[int]]:
    """The same partitions dealt evenly, as faust's actives are."""
    clients = sorted(actives)
    every = sorted(p for parts in actives.values() for p in parts)
    return {c: set(every[i :: len(clients)]) for i, c in enumerate(clients)}


@given(_layouts())
def test_spread_standbys_properties(layout) -> None:  # noqa: ANN001
    actives, previous, replicas = layout
    spread = spread_standbys(actives, previous, replicas)
    copies = min(replicas, len(actives) - 1)
    assert set(spread) == set(actives)
    for owner, parts in actives.items():
        assert not spread[owner] & parts  # never a copy where it is active
        for partition in parts:
            assert sum(partition in held for held in spread.values()) == max(copies, 0)
    balanced = _balanced(actives)
    if copies == 1:  # (with more copies faust promotes one of them: room for one is enough)
        assert room_after_loss(balanced, spread_standbys(balanced, previous, replicas))
