"""No unanswered query during a move: the routing decision (a pure function, every case and
a property over all of them), and in this process a worker whose key's owner answers 503
(opening), is down, or changes while the request waits: the request is asked again within
its timeout and answered once an owner can, 503 JSON only when none could in time."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from app.web import routing
from app.web.routing import Step, next_step

from .test_peer_answers import closed_port
from .test_requests import GOOD, HOUR, Member, get_json, start  # noqa: F401 (the fixture)

OTHER = URL("http://127.0.0.1:6067/")
PATH = f"/api/properties/p/views?hour={HOUR}"


@pytest.mark.parametrize(
    "open_here, owner, owner_is_self, routed, step",
    [
        (True, OTHER, False, False, Step.LOCAL),  # still open here: answer, whatever the group says
        (True, None, False, True, Step.LOCAL),
        (False, OTHER, False, False, Step.FORWARD),
        (False, OTHER, False, True, Step.REFUSE),  # a peer asked: no second hop
        (False, OTHER, True, False, Step.WAIT),  # assigned here, still opening (restoring)
        (False, OTHER, True, True, Step.WAIT),  # a peer asked the new owner before it is ready
        (False, None, False, False, Step.WAIT),  # a rebalance: nobody holds it yet
        (False, None, False, True, Step.WAIT),
    ],
)
def test_the_routing_decision(open_here, owner, owner_is_self, routed, step):
    assert next_step(open_here, owner, owner_is_self, routed) is step


@given(st.booleans(), st.sampled_from([None, OTHER]), st.booleans(), st.booleans())
def test_a_request_is_forwarded_at_most_once_and_only_to_a_known_other_owner(
    open_here, owner, owner_is_self, routed
):
    owner_is_self = owner_is_self and owner is not None
    step = next_step(open_here, owner, owner_is_self, routed)
    assert (step is Step.LOCAL) == open_here
    if step is Step.FORWARD:
        assert not routed and owner is not None and not owner_is_self
    if step is Step.REFUSE:  # only a peer's request, about a partition known to be elsewhere
        assert routed and owner is not None and not owner_is_self and not open_here


class Opening(Member):
    """A member that answers 503 JSON (its partition is opening) ``times`` times, then 200."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times
        self.answer = (503, "application/json", b'{"error": "partition 2 is not ready; retry shortly"}')

    def _app(self):  # noqa: ANN202
        app = super()._app()

        @app.on_response_prepare.append
        async def _ready_after(request, response) -> None:  # noqa: ANN001
            if len(self.seen) >= self.times:
                self.answer = (200, "application/json", b'{"from": "member"}')

        return app


async def test_an_owner_still_opening_is_asked_again_until_it_answers(start):
    member = Opening(times=3)
    client = await start(member)
    started = time.monotonic()
    status, body = await get_json(client, PATH, GOOD)
    assert (status, body) == (200, {"from": "member"})
    assert len(member.seen) == 4 and time.monotonic() - started < 4.0


async def test_an_owner_that_never_gets_ready_is_503_json_once_the_timeout_is_spent(start):
    member = Opening(times=10**6)
    client = await start(member)
    started = time.monotonic()
    status, body = await get_json(client, PATH + "&timeout=1", GOOD)
    took = time.monotonic() - started
    assert status == 503 and body == {"error": "partition 2 is not ready; retry shortly"}
    assert 1.0 <= took < 2.5, took
    assert len(member.seen) >= 3  # asked again, not once
    # The owner was told how long it may wait for the partition itself.
    assert all("timeout=" in path for path, _ in member.seen)
    remaining = [float(path.rsplit("timeout=", 1)[1]) for path, _ in member.seen]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] <= 1.0


async def test_a_dead_owner_replaced_by_a_new_one_while_the_request_waits(start, monkeypatch):
    member = Member()
    client = await start(member)
    dead = URL(f"http://127.0.0.1:{closed_port()}/")
    # The group first names a worker that is gone, then (a rebalance later) the member.
    calls = 0
    real = routing.owner_url

    def owner_url(app, topic, partition):  # noqa: ANN001, ANN202
        nonlocal calls
        calls += 1
        return dead if calls <= 3 else real(app, topic, partition)

    monkeypatch.setattr(routing, "owner_url", owner_url)
    status, body = await get_json(client, PATH, GOOD)
    assert (status, body) == (200, {"from": "member"}) and calls >= 4
    assert len(member.seen) == 1


async def test_a_peers_request_for_a_partition_this_worker_knows_elsewhere_is_refused_at_once(start):
    member = Member()
    client = await start(member)
    started = time.monotonic()
    status, body = await get_json(client, PATH, {**GOOD, "X-Routed-By": "http://127.0.0.1:6099"})
    assert status == 503 and "not ready" in body["error"]
    assert time.monotonic() - started < 1.0 and member.seen == []  # no second hop
