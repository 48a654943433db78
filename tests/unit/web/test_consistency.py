"""``consistency``, ``atLeast`` and ``timeout``: parsing (any text a value or a 400), the
forwarded form, and waiting for a position on the ``Moved`` signal."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.engine.moved import Moved
from app.positions import Position, PositionCodec
from app.settings import Settings
from app.web.consistency import (
    DEFAULT_TIMEOUT_S,
    Deadline,
    ReadOptions,
    codec_of,
    parse_timeout,
    reach,
    read_options,
)
from app.web.params import BadRequest

CODEC = PositionCodec("app", {"property.views": 4, "user.profiles": 1})
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))
VIEWS_3 = ("property.views", 3)


def test_defaults_are_committed_without_bound():
    options = read_options({}, CODEC)
    assert options == ReadOptions(False, None, DEFAULT_TIMEOUT_S)


def test_latest_bound_and_timeout():
    options = read_options(
        {"consistency": "latest", "atLeast": "property.views:3:17", "timeout": "2.5"}, CODEC
    )
    assert options.latest and options.timeout_s == 2.5
    assert options.bound.offsets == {VIEWS_3: 17}


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"consistency": "eventual"}, "consistency: must be committed, latest or standby"),
        ({"timeout": "31"}, "timeout: must be at most 30"),
        ({"timeout": "-1"}, "timeout: must be a number"),
        ({"timeout": "nan"}, "timeout: must be a number"),
        ({"atLeast": "zzz"}, "atLeast: not a position token"),
        ({"atLeast": "orders:0:1"}, "atLeast: 'orders' is not a topic this app reads"),
    ],
)
def test_bad_options_are_400(query, fragment):
    with pytest.raises(BadRequest, match=fragment):
        read_options(query, CODEC)


@given(ANY_TEXT, ANY_TEXT, ANY_TEXT)
def test_any_options_parse_or_are_400(consistency, bound, timeout):
    try:
        options = read_options(
            {"consistency": consistency, "atLeast": bound, "timeout": timeout}, CODEC
        )
    except BadRequest as exc:
        assert str(exc)
        return
    assert 0 <= options.timeout_s <= 30
    assert (options.latest, options.standby) == (consistency == "latest", consistency == "standby")


@given(st.sampled_from(["committed", "latest", "standby"]), st.none() | st.integers(0, 10**6),
       st.floats(0, 30))
def test_every_consistency_travels_to_the_owner_as_it_came(consistency, offset, remaining):
    query = {"consistency": consistency}
    if offset is not None:
        query["atLeast"] = f"property.views:3:{offset}"
    options = read_options(query, CODEC)
    forwarded = options.forward_query(CODEC, remaining)
    assert forwarded.get("consistency", "committed") == consistency
    again = read_options(forwarded, CODEC)
    assert (again.latest, again.standby, again.bound) == (
        options.latest, options.standby, options.bound
    )


@given(ANY_TEXT)
@example("0\x1f")  # str.strip() takes the unit separator off, float() does not (a 500 once)
@example(" 5 ")
def test_any_timeout_is_seconds_or_400(text):
    try:
        value = parse_timeout(text)
    except BadRequest:
        return
    assert 0 <= value <= 30


def test_the_forwarded_query_carries_the_bound_and_the_time_left():
    options = read_options({"consistency": "latest", "atLeast": "property.views:3:17"}, CODEC)
    query = options.forward_query(CODEC, 1.23456)
    assert query["consistency"] == "latest" and query["timeout"] == "1.235"
    assert read_options(query, CODEC) == ReadOptions(True, options.bound, 1.235)
    assert ReadOptions().forward_query(CODEC, 3) == {}  # the defaults: the path as before


def test_codec_of_the_settings_reads_the_source_topics():
    codec = codec_of(Settings(topic_partitions=6, profiles_partitions=2, app_id="x"))
    assert codec.topics == {"property.views": 6, "property.events": 6, "user.profiles": 2}


async def test_reach_wakes_at_the_move_that_covers_the_bound():
    moved, offsets = Moved(), {VIEWS_3: 5}

    def look() -> Position:
        return Position(dict(offsets))

    async def apply() -> None:
        for offset in (6, 7, 8):
            await asyncio.sleep(0.01)
            offsets[VIEWS_3] = offset
            moved.notify()

    task = asyncio.ensure_future(apply())
    started = time.monotonic()
    position, reached = await reach(look, moved, Position({VIEWS_3: 7}), Deadline(5))
    assert reached and position.offsets[VIEWS_3] == 7
    assert time.monotonic() - started < 1
    await task


async def test_reach_gives_up_at_the_deadline_with_the_position_reached():
    moved = Moved()
    started = time.monotonic()
    position, reached = await reach(
        lambda: Position({VIEWS_3: 5}), moved, Position({VIEWS_3: 6}), Deadline(0.2)
    )
    assert not reached and position.offsets == {VIEWS_3: 5}
    assert 0.15 < time.monotonic() - started < 2


async def test_a_bound_on_other_partitions_does_not_wait():
    position, reached = await reach(
        lambda: Position({VIEWS_3: 5}), Moved(), Position({("property.views", 1): 99}), Deadline(5)
    )
    assert reached and position.offsets == {VIEWS_3: 5}


async def test_moved_wakes_every_waiter_once_and_never_cancels_for_a_timeout():
    moved = Moved()
    first = moved.next()
    assert moved.next() is first
    done, _ = await asyncio.wait({first}, timeout=0.01)
    assert not done and not first.cancelled()
    moved.notify()
    assert first.done() and moved.next() is not first
    moved.notify()  # nobody waiting: nothing to do
