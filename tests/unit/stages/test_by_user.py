"""Views-by-user records: never over the byte budget, whatever the ids, and lossless for every
entry that fits a record at all (validated views always do)."""

from __future__ import annotations

import random
from collections import Counter

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from app.metrics import Metrics
from app.stages import by_user

BROKER_DEFAULT_LIMIT = 1_048_588  # message.max.bytes: one record batch, framing included
BATCH_FRAMING = 61 + 64  # batch header, and a record's own fields with the key, generously

ids = st.text(max_size=300)  # any text, control characters and quotes included
weeks = st.integers(min_value=-(2**63), max_value=2**63 - 1)
entries_st = st.lists(st.tuples(ids, weeks, ids), max_size=60, unique=True)


def decoded(records: list[bytes]) -> list[by_user.Entry]:
    out: list[by_user.Entry] = []
    for value in records:
        entries = by_user.decode(by_user.KEY, value)
        assert entries is not None
        out.extend(entries)
    return out


def fits_alone(entry: by_user.Entry, budget: int) -> bool:
    return len(orjson.dumps([entry])) <= budget


@settings(max_examples=300)
@given(entries=entries_st, budget=st.integers(min_value=2, max_value=2_000))
def test_every_record_within_budget_and_every_fitting_entry_delivered_once(entries, budget):
    packed = by_user.pack(entries, budget)
    assert all(len(value) <= budget for value in packed.records)
    sent = decoded(packed.records)
    assert len(sent) == len(set(sent))  # each entry once
    assert set(sent) == {e for e in entries if fits_alone(e, budget)}
    assert set(packed.dropped) == {e for e in entries if not fits_alone(e, budget)}
    # The records are the JSON the decoder of the segment-users stage reads.
    assert all(orjson.loads(value) for value in packed.records)


@settings(max_examples=200)
@given(entries=entries_st)
def test_with_the_real_budget_decoding_gives_back_exactly_the_input(entries):
    records = by_user.encode(entries)
    assert all(len(value) <= by_user.MAX_RECORD_BYTES for value in records)
    assert set(decoded(records)) == set(entries)


@given(entries=entries_st, budget=st.integers(min_value=2, max_value=500), seed=st.integers())
def test_a_replayed_batch_sends_the_same_bytes(entries, budget, seed):
    """Same entries in any order (a set's iteration order varies) -> the same records."""
    shuffled = list(entries)
    random.Random(seed).shuffle(shuffled)
    assert by_user.pack(shuffled, budget) == by_user.pack(entries, budget)


def test_long_user_ids_make_several_records_far_below_the_broker_limit():
    """The reported case: 20 views with 60 KB userIds made one 1.2 MB record, which the broker
    refused for good (and the transaction with it)."""
    entries = {(f"{i:02d}" + "u" * 60_000, 1_795_000_000_000, "investor") for i in range(20)}
    records = by_user.encode(entries)
    assert len(records) > 1
    assert all(len(value) + BATCH_FRAMING + len(by_user.KEY) < BROKER_DEFAULT_LIMIT // 2
               for value in records)
    assert set(decoded(records)) == entries


def test_an_entry_too_large_for_any_record_is_dropped_not_sent():
    huge = ("u" * (by_user.MAX_RECORD_BYTES + 1), 0, "investor")
    fine = ("user-1", 0, "investor")
    packed = by_user.pack([huge, fine])
    assert packed.dropped == [huge]
    assert decoded(packed.records) == [fine]
    assert all(len(value) <= by_user.MAX_RECORD_BYTES for value in packed.records)


def test_escaped_characters_count_at_their_encoded_size():
    """A quote is two bytes in JSON, a control character six: the budget holds the encoding."""
    entries = [('"' * 40, 1, "\x01" * 10), ("\\" * 40, 2, "s")]
    budget = len(orjson.dumps(entries[:1]))  # room for exactly the first one
    packed = by_user.pack(entries, budget)
    assert len(packed.records) == 2
    assert all(len(value) <= budget for value in packed.records)
    assert decoded(packed.records) == entries


def test_dropped_entries_are_counted_per_output_topic():
    metrics = Metrics()
    metrics.record_outcomes("property.views", Counter({"dropped:views-by-user": 2}))
    [sample] = [
        s for s in metrics.outputs_dropped.collect()[0].samples if s.name.endswith("_total")
    ]
    assert (sample.labels, sample.value) == ({"topic": "views-by-user"}, 2.0)
