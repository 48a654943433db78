"""``Applied``: the applied offset (and positions) a stage keeps in its partition's store
survive a commit, vanish with a crash before one, and turn replayed offsets away."""

from __future__ import annotations

from app.engine.applied import APPLIED_KEY, Applied

POSITION = b"position"


def commit(store) -> None:  # noqa: ANN001
    """What a successful commit does to the store."""
    store.seal()
    store.apply_sealed(1)


def test_a_fresh_partition_has_applied_nothing(store) -> None:
    applied = Applied(store)
    assert applied.offset == -1
    assert applied.load(POSITION, 7) == 7
    assert not applied.unstaged


def test_advance_takes_new_offsets_and_turns_replays_away(store) -> None:
    applied = Applied(store)
    assert [applied.advance(o) for o in (0, 1, 1, 0, 5, 3)] == [True, True, False, False, True, False]
    assert applied.offset == 5


def test_stage_writes_offset_and_positions_into_the_pending_changes(store) -> None:
    applied = Applied(store, b"my-key")
    applied.advance(41)
    assert applied.unstaged
    applied.stage({POSITION: 1_800_000_000_000})
    assert store.pending == {b"my-key": b"41", POSITION: b"1800000000000"}
    assert not applied.unstaged


def test_what_was_committed_is_what_a_restart_resumes_from(open_store) -> None:
    store = open_store("p")
    applied = Applied(store)
    applied.advance(9)
    applied.stage({POSITION: 3})
    commit(store)
    applied.advance(12)  # applied, never committed: a crash loses it
    applied.stage({POSITION: 4})
    store.close()

    again = Applied(open_store("p"))
    assert again.offset == 9 and again.load(POSITION, 0) == 3
    assert not again.advance(9) and again.advance(10)


def test_the_default_key_is_the_stages_bookkeeping_key(store) -> None:
    applied = Applied(store)
    applied.advance(0)
    applied.stage()
    assert list(store.pending) == [APPLIED_KEY]
