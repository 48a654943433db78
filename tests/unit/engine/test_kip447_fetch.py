"""Committed offsets with ``require_stable`` (app.engine.kip447.fetch), the coordinator's
answers scripted: UNSTABLE_OFFSET_COMMIT is asked again until the transaction ends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    NodeNotReadyError,
    NotCoordinatorForGroupError,
    UnknownTopicOrPartitionError,
)
from hypothesis import given
from hypothesis import strategies as st

from app.engine.kip447 import UnstableOffsets, UnsupportedByBroker
from app.engine.kip447.fetch import by_topic, fetch_committed, read_answer
from app.engine.kip447.outcomes import Outcome
from app.engine.kip447.protocol import OffsetFetchResponse_v7

A0, A1, B0 = TopicPartition("a", 0), TopicPartition("a", 1), TopicPartition("b", 0)


def answer(partitions: dict[TopicPartition, tuple[int, int]], error_code: int = 0) -> Callable:
    """An OffsetFetch v7 answer: ``{tp: (offset, error code)}``."""
    topics: dict[str, list] = {}
    for tp, (offset, code) in sorted(partitions.items()):
        topics.setdefault(tp.topic, []).append((tp.partition, offset, -1, "", code, {}))
    response = OffsetFetchResponse_v7(0, [(t, p, {}) for t, p in topics.items()], error_code, {})
    return lambda request: response


class Coordinator:
    """Stands in for ``AIOKafkaClient``'s ``coordinator_lookup`` and ``send``."""

    def __init__(self, *answers: Callable | BaseException, versions=None) -> None:  # noqa: ANN001
        self.answers = list(answers)
        self.versions = versions or {9: (1, 10)}
        self.lookups = 0
        self.asked: list = []

    async def coordinator_lookup(self, kind, key):  # noqa: ANN001
        self.lookups += 1
        return 1

    async def send(self, node_id, request, *, group=None):  # noqa: ANN001
        struct = request.prepare(self.versions)
        self.asked.append(([(t, parts) for t, parts, _ in struct.topics], struct.require_stable))
        reply = self.answers.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply(struct)


async def test_unstable_partitions_are_asked_again_until_the_transaction_ends():
    client = Coordinator(
        answer({A0: (-1, 88), A1: (7, 0), B0: (-1, 0)}),
        answer({A0: (-1, 88)}),
        answer({A0: (42, 0)}),
    )
    offsets = await fetch_committed(client, "g", [B0, A1, A0], backoff_s=0)
    assert offsets == {A0: 42, A1: 7, B0: None}
    assert client.asked == [
        ([("a", [0, 1]), ("b", [0])], True), ([("a", [0])], True), ([("a", [0])], True),
    ]
    assert client.lookups == 1


async def test_require_stable_can_be_left_off():
    client = Coordinator(answer({A0: (5, 0)}))
    assert await fetch_committed(client, "g", [A0], require_stable=False) == {A0: 5}
    assert client.asked == [([("a", [0])], False)]


async def test_a_transaction_that_outlasts_the_timeout_is_named():
    client = Coordinator(*[answer({A0: (-1, 88), A1: (3, 0)})] + [answer({A0: (-1, 88)})] * 100)
    with pytest.raises(UnstableOffsets, match=r"a\[0\] still pending"):
        await fetch_committed(client, "g", [A0, A1], timeout_s=0.05, backoff_s=0.01)


async def test_a_moved_or_unreachable_coordinator_is_looked_up_again():
    client = Coordinator(
        answer({}, error_code=16),  # NOT_COORDINATOR
        NodeNotReadyError("down"),
        answer({}, error_code=14),  # COORDINATOR_LOAD_IN_PROGRESS: same coordinator
        answer({A0: (9, 0)}),
    )
    assert await fetch_committed(client, "g", [A0], backoff_s=0) == {A0: 9}
    assert client.lookups == 3


async def test_the_last_retriable_error_is_raised_after_the_timeout():
    client = Coordinator(*[answer({}, error_code=16)] * 1000)
    with pytest.raises(NotCoordinatorForGroupError):
        await fetch_committed(client, "g", [A0], timeout_s=0.05, backoff_s=0.01)


@pytest.mark.parametrize(("reply", "error"), [
    (answer({}, error_code=30), GroupAuthorizationFailedError),
    (answer({A0: (-1, 3)}), UnknownTopicOrPartitionError),
])
async def test_what_no_retry_gets_past_is_raised_at_once(reply, error):
    client = Coordinator(reply, answer({A0: (1, 0)}))
    with pytest.raises(error, match="offset fetch for group g"):
        await fetch_committed(client, "g", [A0], backoff_s=0)
    assert len(client.asked) == 1


async def test_a_broker_without_v7_is_named():
    with pytest.raises(UnsupportedByBroker, match=r"OffsetFetch v7 .* supports v1-v5"):
        await fetch_committed(Coordinator(versions={9: (1, 5)}), "g", [A0])


async def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="group_id"):
        await fetch_committed(Coordinator(), "", [A0])
    with pytest.raises(TypeError, match="TopicPartition"):
        await fetch_committed(Coordinator(), "g", [("a", 0)])
    assert await fetch_committed(Coordinator(), "g", []) == {}


def test_partitions_go_by_topic_sorted_once():
    assert by_topic([B0, A1, A0, A1]) == [("a", [0, 1]), ("b", [0])]


partitions = st.sets(
    st.builds(TopicPartition, st.sampled_from("abc"), st.integers(0, 5)), max_size=10
)
codes = st.sampled_from([0, 0, 88, 14, 16, 3, 30])


@given(asked=partitions, answered=st.dictionaries(
    st.builds(TopicPartition, st.sampled_from("abcd"), st.integers(0, 6)),
    st.tuples(st.integers(-1, 10**6), codes), max_size=12,
))
def test_an_answer_settles_only_what_was_asked_and_answered(asked, answered):
    response = answer(answered)(None)
    settled, unstable, worst, code = read_answer(response, set(asked))
    assert settled.keys() | unstable == asked and not settled.keys() & unstable
    for tp, offset in settled.items():
        offset_answered, code_answered = answered[tp]
        assert code_answered == 0
        assert offset == (offset_answered if offset_answered >= 0 else None)
    for tp in unstable:
        assert tp not in answered or answered[tp][1] != 0
    others = {answered[tp][1] for tp in asked if tp in answered and answered[tp][1] not in (0, 88)}
    assert (worst is Outcome.DONE) == (not others) and (code == 0) == (not others)
    if worst is not Outcome.DONE:
        assert code in others
