"""Positions and their tokens: every token decodes to the position it was made of, and any
text given as a bound is a position of this app or a BadPosition (answered 400), never
another exception."""

from __future__ import annotations

import base64

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.positions import MAX_OFFSET, BadPosition, Position, PositionCodec

TOPICS = {"property.views": 12, "property.events": 12, "user.profiles": 3}
CODEC = PositionCodec("property-analytics", TOPICS)

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
TOKEN_LIKE = st.from_regex(r"\A[A-Za-z0-9_-]{0,40}\Z")
TRIPLE_LIKE = st.from_regex(r"\A[a-z.]{0,16}:[0-9-]{0,4}:[0-9-]{0,21}(,[a-z.]{0,16}:\d{0,3}:\d{0,5})?\Z")


@st.composite
def positions(draw) -> Position:  # noqa: ANN001
    offsets = {}
    for topic, count in TOPICS.items():
        for partition in draw(st.sets(st.integers(0, count - 1), max_size=count)):
            offsets[(topic, partition)] = draw(st.integers(-1, MAX_OFFSET))
    return Position(offsets, draw(st.booleans()))


@given(positions())
def test_a_token_decodes_to_the_offsets_it_was_made_of(position):
    token = CODEC.token(position)
    assert token.isascii() and all(c.isalnum() or c in "-_" for c in token)
    assert CODEC.decode(token).offsets == position.offsets
    assert CODEC.bound(token).offsets == position.offsets


def test_a_token_is_compact():
    views = Position({("property.views", p): 10_000_000 + p for p in range(12)})
    assert len(CODEC.token(views)) < 140
    assert len(CODEC.token(Position({("property.views", 3): 1234}))) <= 20


@given(ANY_TEXT | TOKEN_LIKE | TRIPLE_LIKE)
@example("")
@example(":::")
@example("property.views:3:18446744073709551616")
@example("AQ")
def test_any_text_is_a_position_or_bad_position(text):
    try:
        bound = CODEC.bound(text)
    except BadPosition as exc:
        assert str(exc)
        return
    assert isinstance(bound, Position)
    for (topic, partition), offset in bound.offsets.items():
        assert topic in TOPICS and 0 <= partition < TOPICS[topic] and -1 <= offset <= MAX_OFFSET


@given(positions(), st.integers(0, 60), st.binary(min_size=1, max_size=3))
def test_a_damaged_token_is_refused_or_another_valid_position(position, cut, junk):
    raw = base64.urlsafe_b64decode(CODEC.token(position) + "==")
    for damaged in (raw[:cut], raw + junk, raw[:cut] + junk + raw[cut + len(junk):]):
        text = base64.urlsafe_b64encode(damaged).rstrip(b"=").decode()
        try:
            CODEC.decode(text)
        except BadPosition:
            pass


def test_a_token_of_another_app_is_refused():
    other = PositionCodec("another-app", TOPICS)
    token = other.token(Position({("property.views", 1): 5}))
    with pytest.raises(BadPosition, match="another app"):
        CODEC.decode(token)


def test_a_token_of_a_topic_this_app_does_not_read_is_refused():
    other = PositionCodec("property-analytics", {**TOPICS, "orders": 4})
    token = other.token(Position({("orders", 1): 5}))
    with pytest.raises(BadPosition, match="topic this app does not read"):
        CODEC.decode(token)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("orders:1:5", "not a topic this app reads"),
        ("property.views:12:5", "has 12 partitions"),
        ("property.views:-1:5", "whole numbers"),
        ("property.views:1:05", "whole numbers"),
        ("property.views:1", "base64url"),  # one colon: not a triple, not a token
        ("property.views:1:9223372036854775808", "out of range"),
        ("a b:1:2", "not a topic name"),
        ("!!!", "base64url"),
        ("A", "base64url"),
        ("AQAAAAAA", "another app"),
        ("x" * 5000, "longer than"),
    ],
)
def test_bad_bounds_say_what_is_wrong(text, fragment):
    if text == "property.views:1":
        with pytest.raises(BadPosition, match="topic:partition:offset"):
            CODEC.bound(text)
        return
    with pytest.raises(BadPosition, match=fragment):
        CODEC.bound(text)


def test_producer_metadata_is_a_bound():
    bound = CODEC.bound("property.views:3:120, property.views:3:90,user.profiles:2:7")
    assert bound.offsets == {("property.views", 3): 120, ("user.profiles", 2): 7}


def test_behind_names_only_the_partitions_the_answer_reflects():
    answer = Position({("property.views", 3): 100})
    assert answer.behind(Position({("property.views", 3): 100})) == {}
    assert answer.behind(Position({("property.views", 3): 101})) == {("property.views", 3): 101}
    # another partition, another topic: bounds of other answers
    assert answer.behind(Position({("property.views", 4): 10**9, ("user.profiles", 0): 9})) == {}


def test_merged_takes_the_further_offset_and_committed_only_if_both():
    a = Position({("property.views", 1): 5, ("property.views", 2): 9})
    b = Position({("property.views", 1): 7}, committed=False)
    merged = a.merged(b)
    assert merged.offsets == {("property.views", 1): 7, ("property.views", 2): 9}
    assert merged.committed is False


def test_as_json_groups_offsets_by_topic():
    position = Position({("property.views", 10): 5, ("property.views", 2): 9}, committed=False)
    assert position.as_json("tok") == {
        "committed": False,
        "offsets": {"property.views": {"2": 9, "10": 5}},
        "token": "tok",
    }
