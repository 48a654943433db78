"""Progress of a replay: offsets done against the end of the input when it started."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.replay.progress import Progress, measure, progress_line


def test_measure_clamps_each_partition_to_its_range():
    starts, targets = {0: 10, 1: 0, 2: 5}, {0: 20, 1: 4, 2: 5}
    assert measure(starts, targets, {}) == Progress(0, 14, 14)
    assert measure(starts, targets, {0: 15, 1: 9}) == Progress(9, 14, 5)
    assert measure(starts, targets, {0: 25, 1: 4, 2: 7}).reached


@given(st.dictionaries(st.integers(0, 5), st.tuples(st.integers(0, 100), st.integers(0, 100))),
       st.dictionaries(st.integers(0, 5), st.integers(-1, 300)))
def test_done_plus_behind_is_total(ranges, positions):
    starts = {p: a for p, (a, _) in ranges.items()}
    targets = {p: a + b for p, (a, b) in ranges.items()}
    progress = measure(starts, targets, positions)
    assert progress.done + progress.behind == progress.total
    assert 0 <= progress.fraction <= 1


def test_progress_line():
    line = progress_line("x", Progress(50, 200, 150), 12.3, 25.0)
    assert line == ("replay x: 50 of 200 offsets to the live end (25%) after 12s, 25/s, "
                    "about 6s to go")
