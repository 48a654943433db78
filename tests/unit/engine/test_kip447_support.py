"""Whether a broker knows the requests of app.engine.kip447 (app.engine.kip447.support)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiokafka.cluster import BrokerMetadata
from hypothesis import given
from hypothesis import strategies as st

from app.engine.kip447 import UnsupportedByBroker
from app.engine.kip447.support import check_brokers, unsupported

versions = st.tuples(st.integers(0, 12), st.integers(0, 12)).map(sorted).map(tuple)


def test_kafka_4_4_has_everything_and_2_4_lacks_both():
    assert unsupported({28: (0, 6), 9: (1, 10)}) == []
    lacking = unsupported({28: (0, 2), 9: (0, 6)})
    assert [(p.api, p.version, p.broker) for p in lacking] == [
        ("TxnOffsetCommit", 3, (0, 2)), ("OffsetFetch", 7, (0, 6)),
    ]
    assert "Kafka 2.5 or later" in str(lacking[0])


@given(commit=st.none() | versions, fetch=st.none() | versions)
def test_a_version_is_missing_exactly_when_the_range_leaves_it_out(commit, fetch):
    announced = {key: value for key, value in ((28, commit), (9, fetch)) if value is not None}
    missing = {p.api for p in unsupported(announced)}
    assert ("TxnOffsetCommit" in missing) == (commit is None or not commit[0] <= 3 <= commit[1])
    assert ("OffsetFetch" in missing) == (fetch is None or not fetch[0] <= 7 <= fetch[1])


class Cluster:
    """A client whose brokers answer ApiVersions with the given ranges."""

    def __init__(self, answers: dict[int, dict[int, tuple[int, int]]]) -> None:
        self.answers = answers
        self.cluster = SimpleNamespace(brokers=lambda: {
            BrokerMetadata(node, f"host{node}", 9092, None) for node in answers
        })

    async def send(self, node_id, request, *, group=None):  # noqa: ANN001
        return SimpleNamespace(api_versions=[
            (key, low, high) for key, (low, high) in self.answers[node_id].items()
        ])


async def test_the_broker_that_lacks_a_version_is_named():
    await check_brokers(Cluster({1: {28: (0, 6), 9: (1, 10)}, 2: {28: (0, 5), 9: (1, 9)}}))
    old = Cluster({1: {28: (0, 6), 9: (1, 10)}, 2: {28: (0, 2), 9: (1, 10)}})
    with pytest.raises(UnsupportedByBroker, match=r"broker 2 \(host2:9092\) supports v0-v2"):
        await check_brokers(old)
