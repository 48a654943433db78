"""``CommitWatch``: a commit or opening that waits on the brokers longer than the threshold is
a stall, named with its last error; the stall is logged once when it starts and once when it
ends; work that finishes in time is never one."""

from __future__ import annotations

import logging
from contextlib import ExitStack

from aiokafka.errors import KafkaTimeoutError, NotEnoughReplicasError

from app.engine.stall import CommitWatch


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_work_that_ends_within_the_threshold_is_no_stall():
    clock = Clock()
    watch = CommitWatch(10.0, clock=clock)
    with watch.watching("views: commit of views[0]"):
        clock.now += 9.9
        assert watch.stall() is None
    clock.now += 100
    assert watch.stall() is None and watch.oldest_seconds() == 0.0


def test_the_oldest_waiting_work_is_the_stall_with_its_last_error_as_cause():
    clock = Clock()
    errors: list[BaseException] = []
    watch = CommitWatch(10.0, clock=clock, on_error=errors.append)
    first, other = ExitStack(), ExitStack()
    failed = first.enter_context(watch.watching("views: commit of views[3]"))
    clock.now += 5
    other.enter_context(watch.watching("segment-users: commit of by-user[1]"))
    failed(KafkaTimeoutError())
    failed(NotEnoughReplicasError())
    clock.now += 7

    stall = watch.stall()
    assert stall is not None
    assert stall.what == "views: commit of views[3]" and stall.seconds == 12
    assert "NotEnoughReplicasError" in stall.cause and stall.waiting == 2
    assert [type(e) for e in errors] == [KafkaTimeoutError, NotEnoughReplicasError]

    first.close()  # the other one has waited 7 s only
    assert watch.stall() is None and watch.oldest_seconds() == 7
    with watch.watching("views: commit of views[3]"):  # its last error went with it
        clock.now += 10
        assert watch.stall().cause == "no answer from the brokers yet"
    other.close()


def test_a_stall_without_an_error_says_the_brokers_have_not_answered():
    clock = Clock()
    watch = CommitWatch(1.0, clock=clock)
    with watch.watching("views: opening views[0]"):
        clock.now += 2
        assert watch.stall().cause == "no answer from the brokers yet"


def test_a_stall_is_logged_when_it_starts_and_when_it_ends_once_each(caplog):
    clock = Clock()
    watch = CommitWatch(10.0, clock=clock)
    caplog.set_level(logging.WARNING, logger="app.engine.stall")
    with watch.watching("views: commit of views[0]") as failed:
        failed(NotEnoughReplicasError())
        for _ in range(30):  # the timer ticks every second
            clock.now += 1
            watch.check()
    assert watch.check() is None
    clock.now += 1
    watch.check()

    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("commits stalled: views: commit of views[0] has waited 10s")
    assert "NotEnoughReplicasError" in messages[0] and "Nothing is lost" in messages[0]
    assert messages[1] == "commits resumed: views: commit of views[0] went through after 30.0s"
