"""``redrive``'s reading of dead letters: what their headers say, which can go back."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from app.commands.redrive import DeadLetter, describe, select
from app.models.events import Rejection

INPUTS = {"property.views", "user.profiles", "property.events"}


def record(headers, offset: int = 7) -> SimpleNamespace:  # noqa: ANN001
    return SimpleNamespace(topic="property.views.dlq", partition=3, offset=offset, key=b"p-1",
                           value=b"{}", headers=headers)


def test_a_dead_letter_is_read_from_the_headers_the_workers_write() -> None:
    headers = Rejection("processing_error", "KeyError: 'x'").dlq_headers("property.views", 3, 41)
    letter = DeadLetter.of(record(headers))
    assert (letter.reason, letter.detail) == ("processing_error", "KeyError: 'x'")
    assert letter.origin == "property.views[3]@41" and letter.where == "property.views.dlq[3]@7"
    assert letter.sendable(INPUTS) is None
    assert describe(letter, None) == (
        "property.views.dlq[3]@7 <- property.views[3]@41 processing_error: KeyError: 'x'"
    )


def test_truncated_copies_and_unknown_origins_are_not_sent_back() -> None:
    headers = Rejection("oversized", "big").dlq_headers("property.views", 3, 41)
    truncated = DeadLetter.of(record([*headers, ("dlq.truncated", b"true")]))
    assert truncated.sendable(INPUTS) == "truncated copy"
    internal = DeadLetter.of(record(Rejection("processing_error", "x").dlq_headers("app-by-user", 0, 1)))
    assert internal.sendable(INPUTS) == "its origin is not an input topic"
    assert "[not sent: truncated copy]" in describe(truncated, "truncated copy")


def test_select_keeps_the_chosen_reasons_in_order() -> None:
    letters = [DeadLetter.of(record(Rejection(r, "").dlq_headers("property.views", 0, i), i))
               for i, r in enumerate(["late", "processing_error", "bad_id", "processing_error"])]
    assert [d.offset for d in select(letters, {"processing_error"})] == [1, 3]
    assert [d.offset for d in select(letters, {"late", "bad_id"})] == [0, 2]


@given(st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=30)), max_size=8))
def test_any_headers_give_a_dead_letter_never_an_exception(headers) -> None:  # noqa: ANN001
    letter = DeadLetter.of(record(headers))
    assert isinstance(letter.reason, str) and isinstance(describe(letter, None), str)
    assert letter.sendable(INPUTS) in (None, "truncated copy", "its origin is not an input topic")


def test_an_offset_header_of_non_ascii_digits_is_no_offset() -> None:
    letter = DeadLetter.of(record([("dlq.origin.offset", "²".encode()), ("dlq.origin.partition", b"1")]))
    assert letter.origin_offset is None and letter.origin_partition == 1
