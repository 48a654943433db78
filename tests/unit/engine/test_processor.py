"""``Processor``, the base of every stage's processor: a replayed offset never reaches the
stage's step, a dead letter goes to the processor's route and is counted, punctuators run when
due on the wall clock (all of them when asked), and a commit is sealed only when there is
something to commit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.engine.applied import APPLIED_KEY
from app.engine.processor import Processor
from app.engine.transactions import Outbox
from app.models.dead_letter import DeadLetterRoute
from app.models.events import Rejection
from tests.unit.stages.harness import records

ROUTE = DeadLetterRoute("in", "in.dlq", 1 << 20)
NOW = 1_800_000_000_000


class EmptyStore:
    """A store that holds nothing (no applied offset yet)."""

    def get(self, key: bytes) -> None:
        return None


class Steps(Processor):
    """Records the offsets its step is given; rejects the value ``bad``."""

    def __init__(self, store) -> None:  # noqa: ANN001
        super().__init__(3, store, Outbox(), ROUTE)
        self.steps: list[int] = []

    def step(self, offset: int, key: bytes | None, value: bytes | None, now_ms: int) -> None:
        self.steps.append(offset)
        if value == b"bad":
            self.dead_letter(offset, key, value, Rejection("malformed", "not JSON"))


def test_a_replayed_offset_is_counted_and_never_reaches_the_step(store) -> None:
    proc = Steps(store)
    for offset in (0, 1, 1, 0, 2):
        proc.process(offset, b"k", b"v", NOW)
    assert proc.steps == [0, 1, 2] and proc.applied_offset == 2
    assert proc.outcomes["replayed"] == 2


def test_a_dead_letter_goes_to_the_route_with_its_origin_and_is_counted(store) -> None:
    proc = Steps(store)
    proc.process(7, b"k", b"bad", NOW)
    [copy] = records(proc.outbox)
    headers = dict(copy.headers)
    assert (copy.topic, copy.partition, copy.key, copy.value) == ("in.dlq", 3, b"k", b"bad")
    assert (headers["dlq.origin.topic"], headers["dlq.origin.offset"]) == (b"in", b"7")
    assert proc.outcomes["rejected:malformed"] == 1


def test_before_commit_stages_the_offset_only_when_there_is_something_to_commit(store) -> None:
    proc = Steps(store)
    assert proc.before_commit(NOW) is False and store.pending == {}
    proc.process(0, b"k", b"v", NOW)
    assert proc.before_commit(NOW) is True and store.pending[APPLIED_KEY] == b"0"
    store.seal()
    store.apply_sealed(1)
    assert proc.before_commit(NOW) is False  # nothing new since
    store.put(b"own", b"write")  # bookkeeping of the stage's own (a backfill)
    assert proc.before_commit(NOW) is True


@given(
    interval_ms=st.integers(1, 5_000),
    steps=st.lists(st.integers(0, 3_000), min_size=1, max_size=40),
    every_at=st.sets(st.integers(0, 39), max_size=5),
)
def test_a_punctuator_runs_first_at_once_then_when_its_interval_has_passed(
    interval_ms, steps, every_at
) -> None:
    calls: list[int] = []
    proc = Processor(0, EmptyStore(), Outbox(), ROUTE)  # only the clock is exercised
    now = NOW
    proc.schedule(interval_ms / 1000, lambda: calls.append(now))
    expected, last = [], None
    for i, step in enumerate(steps):
        now += step
        every = i in every_at
        if every or last is None or now - last >= interval_ms:
            expected.append(now)
            last = now
        proc.punctuate(now, every=every)
    assert calls == expected


def test_punctuate_says_whether_its_punctuators_left_anything_to_commit(store) -> None:
    proc = Steps(store)
    changed = [False]

    def publish() -> None:
        if changed[0]:
            proc.outbox.add("shares", 0, b"s", b"1")
            changed[0] = False

    proc.schedule(1.0, publish)
    assert proc.punctuate(NOW) is False  # ran, wrote nothing
    changed[0] = True
    assert proc.punctuate(NOW + 999) is False  # not due
    assert proc.punctuate(NOW + 1000) is True
    changed[0] = True
    assert proc.punctuate(NOW + 1001, every=True) is True  # a handover: due or not
