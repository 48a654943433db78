"""Opening assigned partitions in the background: a failure that would repeat ends the worker,
one that may pass is logged and retried."""

from __future__ import annotations

import pytest
from aiokafka.errors import KafkaTimeoutError, TransactionalIdAuthorizationFailed

from app.agents import lifecycle


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch):
    calls = []

    def fatal(what: str) -> None:
        calls.append(what)
        raise Exited(what)

    monkeypatch.setattr(lifecycle, "fatal", fatal)
    return calls


async def _fails(exc: BaseException) -> None:
    raise exc


async def test_a_refused_transactional_id_ends_the_worker_naming_the_cause(exits):
    with pytest.raises(Exited):
        await lifecycle._logged(_fails(TransactionalIdAuthorizationFailed("pa-views-0")),
                                "opening views partitions")
    assert "opening views partitions: refused for good (TransactionalIdAuthorizationFailed(" in exits[0]
    assert "faust -A app.main acls" in exits[0]


async def test_a_transient_failure_is_logged_and_left_for_the_next_event(exits, caplog):
    await lifecycle._logged(_fails(KafkaTimeoutError()), "opening views partitions")
    assert exits == []
    assert "opening views partitions failed; will retry" in caplog.text
