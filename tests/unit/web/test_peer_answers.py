"""What reaches a client about the other workers: a 503 says what is wrong without a peer's
internal address (logged instead); a member advertising an unusable URL, or a share naming
one, never fails a request or the dashboard."""

from __future__ import annotations

import logging
import socket

import orjson

from .test_requests import GOOD, HOUR, Member, get_json, start  # noqa: F401 (the fixture)


class Advertised:
    """A member of the group that only advertises ``url``: nothing answers there."""

    def __init__(self, url: str) -> None:
        self.url = url

        class _Server:
            async def start_server(self) -> None:
                pass

        self.server = _Server()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_503_names_no_peer_address_and_the_log_does(start, caplog):  # noqa: F811
    port = closed_port()
    client = await start(Advertised(f"http://127.0.0.1:{port}/"))
    with caplog.at_level(logging.WARNING, logger="app.web.api"):
        path = f"/api/properties/p/views?hour={HOUR}&timeout=0.5"  # asked again for 0.5 s
        status, body = await get_json(client, path, GOOD)
    assert status == 503 and set(body) == {"error"}, body
    assert "did not answer" in body["error"] and "retry shortly" in body["error"]
    assert str(port) not in body["error"] and "127.0.0.1" not in body["error"], body
    assert f"127.0.0.1:{port}" in caplog.text and "[" in caplog.text  # topic[partition]


async def test_a_member_with_an_unusable_url_fails_no_request(start, caplog):  # noqa: F811
    for url in ("not a url", "http://[::1", "http://host:99999/", "ftp://x/"):
        client = await start(Advertised(url))
        with caplog.at_level(logging.WARNING, logger="app.web.routing"):
            # No member can answer: the request waits out its timeout, then answers 503.
            path = f"/api/properties/p/views?hour={HOUR}&timeout=0.2"
            status, body = await get_json(client, path, GOOD)
        assert status == 503 and "not ready" in body["error"] and url not in body["error"]
        status, summary = await get_json(client, "/api/dashboard", GOOD)
        assert status == 200
        assert summary["partitions"]["missing"] == list(range(12))
        assert [w["url"] for w in summary["workers"]] == ["http://127.0.0.1:6066"]
        assert "unusable URL" in caplog.text


def share(url: object) -> bytes:
    return orjson.dumps({
        "url": url, "ready": True, "partitions": list(range(12)),
        "top": [{"propertyId": "p", "views": 3, "uniqueUsers": 2}], "views": 3, "properties": 1,
        "eventsPerSecond": None, "series": [], "totals": {}, "rejectedByReason": {}, "lag": [],
    })


async def test_a_share_naming_a_bad_url_is_merged_under_the_url_asked(start):  # noqa: F811
    member = Member()
    member.answer = (200, "application/json", share("::::not a url"))
    client = await start(member)
    status, summary = await get_json(client, "/api/dashboard", GOOD)
    assert status == 200
    assert [w["url"] for w in summary["workers"]][1:] == [member.url]
    assert summary["partitions"]["missing"] == []
    assert summary["topProperties"] == [{"propertyId": "p", "views": 3, "uniqueUsers": 2}]


async def test_many_dashboards_ask_each_peer_once_a_second(start, monkeypatch):  # noqa: F811
    """Tabs refreshing at once, or one after the other within the second, cost each peer one
    request per (hour, limit), not one per tab."""
    import asyncio

    from app.web import dashboard

    # the twelve requests take well under the second on a quiet machine, not always on a busy
    # one: a longer time-to-live keeps what is tested (one request per (hour, limit)) from
    # depending on the machine's speed
    monkeypatch.setattr(dashboard, "LOCAL_CACHE_S", 60.0)
    member = Member()
    member.answer = (200, "application/json", share(None))  # refused: the url is no text
    client = await start(member)
    path = f"/api/dashboard?hour={HOUR}&limit=10"
    answers = await asyncio.gather(*(get_json(client, path, GOOD) for _ in range(8)))
    answers += [await get_json(client, path, GOOD) for _ in range(4)]
    assert {status for status, _ in answers} == {200}
    asked = [p for p, _ in member.seen if p.startswith("/api/dashboard/local")]
    assert len(asked) == 1, asked
    await get_json(client, f"/api/dashboard?hour={HOUR}&limit=5", GOOD)  # another limit
    assert len([p for p, _ in member.seen if p.startswith("/api/dashboard/local")]) == 2
