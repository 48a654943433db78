"""Fitting a dead-letter copy into its topic's limit: any key, value and limit -> a record that
fits, whose key and value are prefixes of the original, marked when (and only when) cut; sizes
counted as the producer counts them before it refuses a record."""

from __future__ import annotations

import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.models.dead_letter import (
    ORIGINAL_BYTES,
    ORIGINAL_KEY_BYTES,
    TRUNCATED,
    DeadLetterRoute,
    dead_letter,
    fit_dead_letter,
    record_size,
)
from app.models.events import Rejection

HEADERS = Rejection("oversized", "value is 9000000 bytes, limit 65536").dlq_headers(
    "property.views", 3, 123_456_789)
PATTERN = bytes(range(256))


def data(n: int) -> bytes:
    return (PATTERN * (n // 256 + 1))[:n]


def sized(n: int | None) -> bytes | None:
    return None if n is None else data(n)


SIZES = st.none() | st.integers(0, 100) | st.integers(0, 3_000_000)


@given(key=st.none() | st.binary(max_size=300), value=st.none() | st.binary(max_size=3000),
       headers=st.lists(st.tuples(st.text(max_size=20), st.binary(max_size=1100)), max_size=6))
def test_record_size_is_the_producers_estimate(key, value, headers):
    assert record_size(key, value, headers) == DefaultRecordBatchBuilder.estimate_size_in_bytes(
        key, value, headers)


@settings(max_examples=300, deadline=None)
@given(key_n=SIZES, value_n=SIZES, limit=st.integers(4096, 2_200_000))
@example(key_n=7, value_n=8_000_000, limit=1_114_112)  # the integration test's gzip bomb
@example(key_n=2_000_000, value_n=None, limit=65_536)  # a tombstone whose key is too large
@example(key_n=2_000_000, value_n=2_000_000, limit=65_536)
@example(key_n=None, value_n=1_114_112 - 300, limit=1_114_112)  # fits with room to spare
def test_any_copy_is_cut_to_fit_and_is_a_prefix(key_n, value_n, limit):
    key, value = sized(key_n), sized(value_n)
    new_key, new_value, new_headers = fit_dead_letter(key, value, HEADERS, limit)
    assert record_size(new_key, new_value, new_headers) <= limit
    assert DefaultRecordBatchBuilder.estimate_size_in_bytes(new_key, new_value, new_headers) <= limit
    assert new_headers[: len(HEADERS)] == HEADERS
    extra = dict(new_headers[len(HEADERS):])
    if record_size(key, value, HEADERS) <= limit:
        assert (new_key, new_value, new_headers) == (key, value, HEADERS)  # untouched
        return
    assert extra[TRUNCATED] == b"true"
    assert extra[ORIGINAL_BYTES] == str(len(value or b"")).encode()
    assert (new_value is None) == (value is None) and (new_key is None) == (key is None)
    assert (key or b"").startswith(new_key or b"") and (value or b"").startswith(new_value or b"")
    assert (ORIGINAL_KEY_BYTES in extra) == (new_key != key)
    if new_key != key:
        assert extra[ORIGINAL_KEY_BYTES] == str(len(key)).encode()
    elif value:  # the value is the longest prefix that fits: one byte more would not
        assert len(new_value) < len(value)
        assert record_size(new_key, value[: len(new_value) + 1], new_headers) > limit


def test_a_copy_at_the_limit_is_kept_and_one_byte_more_is_cut():
    limit = 1_114_112
    value = data(limit - record_size(b"prop-1", b"", HEADERS) - 3)  # a 4-byte length, not 1
    assert record_size(b"prop-1", value, HEADERS) == limit
    assert fit_dead_letter(b"prop-1", value, HEADERS, limit) == (b"prop-1", value, HEADERS)
    key, cut, headers = fit_dead_letter(b"prop-1", value + b"x", HEADERS, limit)
    assert key == b"prop-1" and value.startswith(cut) and len(cut) < len(value)
    assert dict(headers)[TRUNCATED] == b"true"
    assert dict(headers)[ORIGINAL_BYTES] == str(len(value) + 1).encode()


def test_headers_that_cannot_fit_are_an_error_not_a_bad_record():
    with pytest.raises(ValueError, match="headers alone"):
        fit_dead_letter(b"k", b"v", [("h", b"x" * 5000)], 4096)


@settings(max_examples=100, deadline=None)
@given(reason=st.sampled_from(["oversized", "processing_error", "invalid_transition"]),
       detail=st.text(max_size=2000), partition=st.integers(0, 10_000),
       offset=st.integers(0, 2**63 - 1), key=st.none() | st.binary(max_size=64),
       value_n=SIZES)
def test_the_copy_of_any_rejected_record_names_its_origin_and_fits_its_route(
    reason, detail, partition, offset, key, value_n
):
    """The one dead-letter copy every stage sends: the rejection's headers naming the
    record's origin, the original bytes, cut only when they would not fit the route's limit."""
    route = DeadLetterRoute("property.views", "property.views.dlq", 65_536)
    value = sized(value_n)
    got_key, got_value, headers = dead_letter(
        route, Rejection(reason, detail), partition, offset, key, value
    )
    named = dict(headers)
    assert named["dlq.reason"] == reason.encode()
    assert named["dlq.origin.topic"] == b"property.views"
    assert named["dlq.origin.partition"] == str(partition).encode()
    assert named["dlq.origin.offset"] == str(offset).encode()
    assert record_size(got_key, got_value, headers) <= route.limit
    base = Rejection(reason, detail).dlq_headers("property.views", partition, offset)
    if record_size(key, value, base) <= route.limit:
        assert (got_key, got_value, headers) == (key, value, base)
    else:
        assert named[TRUNCATED] == b"true" and value.startswith(got_value)
