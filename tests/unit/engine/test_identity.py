"""``worker_id``: made once per data dir and kept there, so that a restart of the same worker
commits with the same transactional ids (fencing its previous run) and two workers never
share one; anything else found in the file is refused, naming it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.engine.identity import (
    FILE_NAME,
    WorkerIdError,
    parse_worker_id,
    transactional_id,
    worker_id,
)


def test_the_id_is_made_once_and_kept_in_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "worker-6066"  # not there yet
    first = worker_id(data_dir)
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    assert (data_dir / FILE_NAME).read_text() == first + "\n"
    assert worker_id(data_dir) == first  # a restart of the same worker
    assert worker_id(tmp_path / "worker-6067") != first  # another worker
    assert not list(data_dir.glob(".*.tmp"))  # written atomically, nothing left over


def test_the_transactional_id_is_under_the_app_id_prefix() -> None:
    assert transactional_id("pa", "views", "0123456789ab") == "pa-views-0123456789ab"


@pytest.mark.parametrize("text", ["", "\n", "0123456789AB\n", "0123456789a\n", "0123456789abc",
                                  "0123456789ab\n\n", " 0123456789ab", "xyz"])
def test_a_file_this_worker_did_not_write_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    (tmp_path / FILE_NAME).write_text(text)
    with pytest.raises(WorkerIdError, match=re.escape(str(tmp_path / FILE_NAME))):
        worker_id(tmp_path)


@given(st.text(alphabet="0123456789abcdef", min_size=12, max_size=12), st.booleans())
def test_every_id_it_writes_reads_back(value: str, newline: bool) -> None:
    assert parse_worker_id(value + ("\n" if newline else ""), Path("w")) == value


@given(st.text(max_size=30))
def test_any_other_text_is_refused(text: str) -> None:
    if re.fullmatch(r"[0-9a-f]{12}\n?", text):
        assert parse_worker_id(text, Path("w")) == text.removesuffix("\n")
    else:
        with pytest.raises(WorkerIdError, match="not a worker id"):
            parse_worker_id(text, Path("w"))
