"""What each error code of TxnOffsetCommit v3 and OffsetFetch v7 calls for, and the group
metadata a commit is fenced by (app.engine.kip447.outcomes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine.kip447.outcomes import (
    GenerationFenced,
    GroupMetadata,
    Outcome,
    UnstableOffsets,
    commit_outcome,
    error_name,
    fetch_outcome,
)

codes = st.integers(-(2**15), 2**15 - 1)


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (0, Outcome.DONE),
        (22, Outcome.FENCED),  # ILLEGAL_GENERATION
        (25, Outcome.FENCED),  # UNKNOWN_MEMBER_ID
        (82, Outcome.FENCED),  # FENCED_INSTANCE_ID
        (15, Outcome.NEW_COORDINATOR),  # COORDINATOR_NOT_AVAILABLE
        (16, Outcome.NEW_COORDINATOR),  # NOT_COORDINATOR
        (7, Outcome.NEW_COORDINATOR),  # REQUEST_TIMED_OUT
        (14, Outcome.RETRY),  # COORDINATOR_LOAD_IN_PROGRESS
        (3, Outcome.RETRY),  # UNKNOWN_TOPIC_OR_PARTITION
        (51, Outcome.RETRY),  # CONCURRENT_TRANSACTIONS
        (19, Outcome.RETRY),  # NOT_ENOUGH_REPLICAS: retriable, as the Java producer retries it
        (30, Outcome.ABORTABLE),  # GROUP_AUTHORIZATION_FAILED
        (47, Outcome.PRODUCER_FENCED),  # INVALID_PRODUCER_EPOCH
        (90, Outcome.PRODUCER_FENCED),  # PRODUCER_FENCED
        (53, Outcome.FATAL),  # TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        (29, Outcome.FATAL),  # TOPIC_AUTHORIZATION_FAILED
        (-1, Outcome.FATAL),  # UNKNOWN_SERVER_ERROR
        (9999, Outcome.FATAL),  # a code nobody knows yet
    ],
)
def test_commit_outcomes(code, outcome):
    assert commit_outcome(code) is outcome


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (0, Outcome.DONE),
        (88, Outcome.UNSTABLE),  # UNSTABLE_OFFSET_COMMIT
        (15, Outcome.NEW_COORDINATOR),
        (16, Outcome.NEW_COORDINATOR),
        (7, Outcome.NEW_COORDINATOR),
        (14, Outcome.RETRY),
        (3, Outcome.FATAL),  # an unknown topic: the Java consumer's "does not exist"
        (30, Outcome.FATAL),
        (29, Outcome.FATAL),
        (69, Outcome.FATAL),  # GROUP_ID_NOT_FOUND
        (9999, Outcome.FATAL),
    ],
)
def test_fetch_outcomes(code, outcome):
    assert fetch_outcome(code) is outcome


@given(codes)
def test_every_code_has_one_outcome_and_only_zero_is_done(code):
    for outcome in (commit_outcome(code), fetch_outcome(code)):
        assert isinstance(outcome, Outcome)
        assert (outcome is Outcome.DONE) == (code == 0)
    assert (commit_outcome(code) is Outcome.FENCED) == (code in (22, 25, 82))
    assert (fetch_outcome(code) is Outcome.UNSTABLE) == (code == 88)
    assert error_name(code)


def test_error_names_are_kafkas():
    assert [error_name(c) for c in (22, 25, 82, 88, 90)] == [
        "ILLEGAL_GENERATION", "UNKNOWN_MEMBER_ID", "FENCED_INSTANCE_ID",
        "UNSTABLE_OFFSET_COMMIT", "PRODUCER_FENCED",
    ]
    assert error_name(36) == "TOPIC_ALREADY_EXISTS"  # from aiokafka's table


@pytest.mark.parametrize(
    ("metadata", "member"),
    [
        (GroupMetadata("g", 3, "m-1"), True),
        (GroupMetadata("g", 0, "m-1", "static-1"), True),
        (GroupMetadata("g", -1, ""), False),  # aiokafka's consumer after reset_generation()
        (GroupMetadata("g", -1, "m-1"), False),  # half-way through that reset
        (GroupMetadata("g", 3, ""), False),
    ],
)
def test_only_a_member_of_a_generation_is_a_member(metadata, member):
    assert metadata.is_member is member


def test_the_errors_say_who_was_refused_and_why():
    fenced = GenerationFenced(GroupMetadata("app", 7, "m-1"), "ILLEGAL_GENERATION")
    for part in ("app", "generation 7", "member 'm-1'", "ILLEGAL_GENERATION"):
        assert part in str(fenced)
    assert not fenced.retriable
    unstable = UnstableOffsets("app", ["in[0]", "in[3]"], 2.0)
    assert "in[0], in[3]" in str(unstable) and "2.0s" in str(unstable)
