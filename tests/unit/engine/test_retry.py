"""``retry``: transient failures are tried again after growing delays, each try logged; a
refusal ends the retries at once; ``before_retry`` runs between tries and may end them."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

from app.engine.retry import Backoff, constant, retry


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(0.5, 5.0)
    assert [backoff.next_delay() for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]
    assert [constant(1.0).next_delay() for _ in range(3)] == [1.0, 1.0, 1.0]


class Script:
    """An attempt that fails with each of ``errors`` in turn, then returns ``result``."""

    def __init__(self, errors: list[BaseException], result: str = "done") -> None:
        self.errors = list(errors)
        self.result = result
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.result


class Recorded(Backoff):
    """Tiny real delays, and the list of delays asked for."""

    def __init__(self) -> None:
        super().__init__(0.001, 0.004)
        self.delays: list[float] = []

    def next_delay(self) -> float:
        delay = super().next_delay()
        self.delays.append(delay)
        return delay


async def test_transient_failures_are_retried_until_the_attempt_succeeds(caplog) -> None:
    attempt = Script([KafkaConnectionError(), RequestTimedOutError(), OSError("reset"), TimeoutError()])
    backoff = Recorded()
    with caplog.at_level(logging.WARNING, logger="app.engine.retry"):
        assert await retry(attempt, "reading t", backoff=backoff) == "done"
    assert attempt.calls == 5
    assert backoff.delays == [0.001, 0.002, 0.004, 0.004]
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4 and all(m.startswith("reading t failed (") for m in messages)
    assert "retrying in" in messages[0]


async def test_a_refusal_is_raised_at_once_and_logged_as_an_error(caplog) -> None:
    attempt = Script([TopicAuthorizationFailedError("t")])
    backoff = Recorded()
    with pytest.raises(TopicAuthorizationFailedError):
        await retry(
            attempt,
            "opening p",
            refused=lambda exc: isinstance(exc, TopicAuthorizationFailedError),
            backoff=backoff,
        )
    assert attempt.calls == 1 and backoff.delays == []
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "opening p refused for good" in record.getMessage()


async def test_an_error_that_is_not_retriable_passes_through_untouched() -> None:
    attempt = Script([ValueError("a bug")])
    with pytest.raises(ValueError, match="a bug"):
        await retry(attempt, "x", backoff=Recorded())
    assert attempt.calls == 1


async def test_before_retry_runs_between_tries_and_may_end_them() -> None:
    seen: list[str] = []

    async def between(exc: BaseException) -> None:
        seen.append(type(exc).__name__)
        if len(seen) == 2:
            raise LookupError("not ours any more")

    attempt = Script([KafkaConnectionError(), KafkaConnectionError(), KafkaConnectionError()])
    with pytest.raises(LookupError):
        await retry(attempt, "x", backoff=Recorded(), before_retry=between)
    assert seen == ["KafkaConnectionError", "KafkaConnectionError"]
    assert attempt.calls == 2  # the second before_retry ended it before a third try
