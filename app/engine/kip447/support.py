"""Whether every broker of the cluster knows the requests this package sends.

A request a broker does not know fails when it is first sent (``UnsupportedByBroker``), in
the middle of a round. ``check_brokers`` asks each broker of the cluster for its versions
(ApiVersions) at start-up instead, so that a worker on a cluster older than Kafka 2.5 stops
at once, saying which broker lacks what.
"""

from __future__ import annotations

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.admin import ApiVersionRequest

from app.engine.kip447.protocol import (
    OffsetFetchRequest_v7,
    StableOffsetFetch,
    TxnOffsetCommitRequest_v3,
    TxnOffsetCommitWithGeneration,
    UnsupportedByBroker,
    version_problem,
)

NEEDED = (
    (TxnOffsetCommitWithGeneration, TxnOffsetCommitRequest_v3),
    (StableOffsetFetch, OffsetFetchRequest_v7),
)


def unsupported(
    versions: dict[int, tuple[int, int]], where: str = "the broker"
) -> list[UnsupportedByBroker]:
    """What a broker announcing ``versions`` (API key -> (min, max)) lacks of this package's
    requests; empty when it has them all."""
    problems = (
        version_problem(request.API_NAME, struct, versions, request.WHAT, where)
        for request, struct in NEEDED
    )
    return [problem for problem in problems if problem is not None]


async def check_brokers(client: AIOKafkaClient) -> None:
    """Raise the first ``UnsupportedByBroker`` of any broker in the client's metadata (a
    started client: it has bootstrapped)."""
    for broker in sorted(client.cluster.brokers(), key=lambda b: b.nodeId):
        response = await client.send(broker.nodeId, ApiVersionRequest())
        versions = {key: (low, high) for key, low, high, *_ in response.api_versions}
        where = f"broker {broker.nodeId} ({broker.host}:{broker.port})"
        problems = unsupported(versions, where)
        if problems:
            raise problems[0]
