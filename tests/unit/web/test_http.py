"""``bad_request_is_400``: a BadRequest a view raises, wherever in it, is a 400 JSON answer
with the reason; anything else is not the client's fault and goes on up."""

from __future__ import annotations

import orjson
import pytest

from app.web.http import bad_request_is_400
from app.web.params import BadRequest


class FakeView:
    def bytes(self, body: bytes, content_type: str, status: int) -> tuple[int, str, dict]:
        return status, content_type, orjson.loads(body)


@bad_request_is_400
async def get(view: FakeView, request: object, item_id: str) -> object:
    if item_id == "bad":
        raise BadRequest("itemId: not an id")
    if item_id == "broken":
        raise RuntimeError("a bug")
    return ("answer", item_id)


async def test_a_bad_request_is_a_400_with_its_reason() -> None:
    answer = await get(FakeView(), None, item_id="bad")
    assert answer == (400, "application/json", {"error": "itemId: not an id"})


async def test_a_good_request_gets_the_views_answer() -> None:
    assert await get(FakeView(), None, item_id="x-1") == ("answer", "x-1")


async def test_other_errors_are_not_turned_into_client_errors() -> None:
    with pytest.raises(RuntimeError, match="a bug"):
        await get(FakeView(), None, item_id="broken")
