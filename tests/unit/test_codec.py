"""Decoding at the edge: every rejection reason of CONTRACT §3, and what is accepted."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import codec
from app.models.events import ProfileDeleted, PropertyViewed, Rejection, UserProfile

NOW = 1_795_183_387_120  # 2026-11-20T14:03:07.120Z, the wall clock of these tests
TOLERANCE = 300_000  # 5 minutes
MAX = 64 * 1024
_DROP = object()  # marks a field to leave out

VIEW = {
    "eventId": "3f0c-1",
    "eventType": "property.viewed",
    "version": "1.0",
    "timestamp": "2026-11-20T14:03:07.120Z",
    "propertyId": "prop-812",
    "userId": "user-77",
    "sessionId": "sess-9",
    "source": "web",
    "durationMs": 5200,
}
PROFILE_V1 = {"userId": "user-77", "segment": "investor", "version": "1.0"}
PROFILE_V2 = {
    "userId": "user-77",
    "segment": "investor",
    "version": "2.0",
    "updatedAt": "2026-11-01T09:00:00Z",
    "email": "u77@example.test",
    "profile": {"firstName": "Ada", "lastName": "Byron", "company": "Acme"},
}


def view(raw: bytes | None, now_ms: int = NOW, max_bytes: int = MAX, key: bytes | None = b"prop-812"):
    return codec.decode_view(
        key, raw, now_ms=now_ms, max_bytes=max_bytes, future_tolerance_ms=TOLERANCE
    )


def view_doc(**changes) -> bytes:
    doc = {**VIEW, **changes}
    return orjson.dumps({k: v for k, v in doc.items() if v is not _DROP})


def profile(raw: bytes | None, max_bytes: int = MAX, key: bytes | None = b"user-77"):
    return codec.decode_profile(key, raw, max_bytes=max_bytes)


def profile_doc(base: dict, **changes) -> bytes:
    doc = {**base, **changes}
    return orjson.dumps({k: v for k, v in doc.items() if v is not _DROP})



def reason(result) -> str:
    assert isinstance(result, Rejection), f"expected a rejection, got {result!r}"
    assert result.detail  # always says why
    return result.reason


def test_reason_codes_are_those_of_the_contract():
    assert codec.REASONS == (
        "malformed_json",
        "missing_field",
        "bad_type",
        "bad_timestamp",
        "unsupported_version",
        "oversized",
        "future_timestamp",
        "late",
        "bad_id",
        "key_mismatch",
        "invalid_transition",
    )


# -- views: accepted ----------------------------------------------------------------------


def test_valid_view_decodes_every_field():
    assert view(view_doc()) == PropertyViewed(
        event_id="3f0c-1",
        timestamp_ms=NOW,
        property_id="prop-812",
        user_id="user-77",
        version="1.0",
        session_id="sess-9",
        source="web",
        duration_ms=5200,
    )


def test_optional_fields_may_be_absent_or_null_and_version_defaults_to_1_0():
    raw = view_doc(sessionId=_DROP, source=_DROP, durationMs=None, version=_DROP)
    assert view(raw) == PropertyViewed(
        event_id="3f0c-1", timestamp_ms=NOW, property_id="prop-812", user_id="user-77"
    )


def test_unknown_extra_fields_are_ignored():
    raw = view_doc(referrer="newsletter", experiment={"arm": "b"}, tags=[1, 2])
    assert view(raw) == view(view_doc())


@pytest.mark.parametrize("version", ["1.0", "1.3", "2.0", "2.1", "1"])
def test_major_versions_1_and_2_are_accepted(version):
    result = view(view_doc(version=version))
    assert isinstance(result, PropertyViewed)
    assert result.version == version


def test_timestamp_with_offset_is_converted_to_utc():
    result = view(view_doc(timestamp="2026-11-20T16:03:07.120+02:00"))
    assert result.timestamp_ms == NOW


def test_timestamp_exactly_at_the_future_tolerance_is_accepted():
    result = view(view_doc(timestamp="2026-11-20T14:08:07.120Z"), now_ms=NOW)
    assert isinstance(result, PropertyViewed)
    assert result.timestamp_ms == NOW + TOLERANCE


def test_value_of_exactly_the_limit_is_accepted():
    base = view_doc(pad="")
    raw = view_doc(pad="x" * (MAX - len(base)))
    assert len(raw) == MAX
    assert isinstance(view(raw), PropertyViewed)


# -- views: rejected ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", [None, b"", b"{", b"not json", b'{"eventId": "a",}', b"\xff\xfe{}", b"{'a': 1}"]
)
def test_malformed_json(raw):
    assert reason(view(raw)) == "malformed_json"


@pytest.mark.parametrize(
    "raw",
    [
        view_doc(eventId=_DROP),
        view_doc(eventId=None),
        view_doc(propertyId=_DROP),
        view_doc(userId=_DROP),
        view_doc(userId=None),
        view_doc(timestamp=_DROP),
        view_doc(timestamp=None),
    ],
)
def test_missing_field(raw):
    assert reason(view(raw)) == "missing_field"


@pytest.mark.parametrize(
    "raw",
    [
        b"[1, 2]",
        b'"a string"',
        b"42",
        b"null",
        view_doc(eventId=123),
        view_doc(propertyId=["prop-1"]),
        view_doc(userId=True),
        view_doc(durationMs=True),
        view_doc(durationMs=False),
        view_doc(durationMs="5200"),
        view_doc(durationMs=5200.5),
        view_doc(sessionId=7),
        view_doc(source={"web": 1}),
        view_doc(version=2),
        view_doc(timestamp=NOW),
    ],
)
def test_bad_type(raw):
    assert reason(view(raw)) == "bad_type"


def test_duration_true_is_bad_type_not_one_millisecond():
    result = view(view_doc(durationMs=True))
    assert result == Rejection("bad_type", "durationMs must be int, got bool")


@pytest.mark.parametrize(
    "timestamp",
    [
        "2026-11-20T14:03:07.120",  # naive
        "2026-11-20T14:03:07",
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-11-20T14:03:07.120 UTC",
        "",
    ],
)
def test_bad_timestamp(timestamp):
    assert reason(view(view_doc(timestamp=timestamp))) == "bad_timestamp"


@pytest.mark.parametrize("version", ["3.0", "0.9", "10.0", "", "v1", "3"])
def test_unsupported_version(version):
    assert reason(view(view_doc(version=version))) == "unsupported_version"


def test_oversized_one_byte_over_the_limit():
    base = view_doc(pad="")
    raw = view_doc(pad="x" * (MAX - len(base) + 1))
    assert len(raw) == MAX + 1
    assert reason(view(raw)) == "oversized"


def test_oversized_is_decided_before_parsing():
    assert reason(view(b"{" * (MAX + 1))) == "oversized"


def test_future_timestamp_one_ms_beyond_tolerance():
    result = view(view_doc(timestamp="2026-11-20T14:08:07.121Z"), now_ms=NOW)
    assert reason(result) == "future_timestamp"


def test_future_is_relative_to_the_given_wall_clock():
    raw = view_doc(timestamp="2026-11-20T15:00:00Z")
    assert reason(view(raw, now_ms=NOW)) == "future_timestamp"
    assert isinstance(view(raw, now_ms=NOW + 3_600_000), PropertyViewed)


# -- profiles -----------------------------------------------------------------------------


def test_profile_v1_accepted():
    assert profile(orjson.dumps(PROFILE_V1)) == UserProfile(
        user_id="user-77", segment="investor", version="1.0"
    )


def test_profile_v2_accepted_with_nested_profile():
    result = profile(orjson.dumps(PROFILE_V2))
    assert result == UserProfile(
        user_id="user-77",
        segment="investor",
        version="2.0",
        updated_at="2026-11-01T09:00:00Z",
        email="u77@example.test",
        profile={"firstName": "Ada", "lastName": "Byron", "company": "Acme"},
    )
    assert result.to_wire() == PROFILE_V2


def test_profile_to_wire_omits_absent_optionals():
    assert profile(orjson.dumps(PROFILE_V1)).to_wire() == PROFILE_V1


def test_profile_without_version_is_1_0():
    result = profile(profile_doc(PROFILE_V1, version=_DROP))
    assert result.version == "1.0"


def test_profile_unknown_fields_ignored():
    result = profile(profile_doc(PROFILE_V2, phone="+1 555", tier=3))
    assert result == profile(orjson.dumps(PROFILE_V2))


@pytest.mark.parametrize("version", ["2.1", "1.5"])
def test_profile_minor_versions_accepted(version):
    assert profile(profile_doc(PROFILE_V2, version=version)).version == version


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{oops", "malformed_json"),
        (b"[]", "bad_type"),
        (profile_doc(PROFILE_V1, userId=_DROP), "missing_field"),
        (profile_doc(PROFILE_V1, segment=_DROP), "missing_field"),
        (profile_doc(PROFILE_V1, segment=""), "bad_id"),
        (profile_doc(PROFILE_V1, segment=5), "bad_type"),
        (profile_doc(PROFILE_V2, profile="Ada Byron"), "bad_type"),
        (profile_doc(PROFILE_V2, email=["a@b"]), "bad_type"),
        (profile_doc(PROFILE_V2, updatedAt=20261101), "bad_type"),
        (profile_doc(PROFILE_V2, updatedAt="2026-11-01T09:00:00"), "bad_timestamp"),
        (profile_doc(PROFILE_V2, updatedAt="last tuesday"), "bad_timestamp"),
        (profile_doc(PROFILE_V2, version="3.0"), "unsupported_version"),
        (profile_doc(PROFILE_V1, version="0.1"), "unsupported_version"),
    ],
)
def test_profile_rejections(raw, expected):
    assert reason(profile(raw)) == expected


def test_profile_oversized():
    raw = profile_doc(PROFILE_V1, bio="x" * 200)
    assert reason(profile(raw, max_bytes=len(raw) - 1)) == "oversized"
    assert isinstance(profile(raw, max_bytes=len(raw)), UserProfile)


# -- ids and keys (bad_id, key_mismatch) -----------------------------------------------------


@pytest.mark.parametrize("field", ["eventId", "propertyId", "userId"])
@pytest.mark.parametrize(
    "bad", ["", "a\x1fb", "\x00", "tab\there", "del\x7f", "nl\n", "x" * 257, "é" * 129]
)
def test_view_ids_that_are_not_ids_are_bad_id(field, bad):
    key = bad.encode() if field == "propertyId" else b"prop-812"
    assert reason(view(view_doc(**{field: bad}), key=key)) == "bad_id"


@pytest.mark.parametrize(
    "good", ["a:b", "a/b", "100%", "two words", "物件-812", "\u00ff\u00fe", "x" * 256, "é" * 128]
)
def test_any_id_within_the_rules_is_accepted(good):
    event = view(view_doc(propertyId=good, userId=good, eventId=good), key=good.encode())
    assert isinstance(event, PropertyViewed), event
    assert (event.property_id, event.user_id, event.event_id) == (good, good, good)


def test_view_key_must_be_its_property_id():
    assert reason(view(view_doc(), key=None)) == "key_mismatch"
    assert reason(view(view_doc(), key=b"prop-813")) == "key_mismatch"
    assert reason(view(view_doc(), key=b"\xff\xfe")) == "key_mismatch"
    assert isinstance(view(view_doc(), key=b"prop-812"), PropertyViewed)


def test_field_rules_come_before_the_key_rule():
    assert reason(view(view_doc(userId=_DROP), key=None)) == "missing_field"


def test_profile_key_must_be_its_user_id():
    assert reason(profile(profile_doc(PROFILE_V1), key=b"user-78")) == "key_mismatch"
    assert reason(profile(profile_doc(PROFILE_V1), key=None)) == "bad_id"


@pytest.mark.parametrize("key", [None, b"", b"\xffnext-offset:1", b"u\x1fx", b"x" * 257])
def test_profile_keys_that_are_not_ids_are_bad_id_tombstones_included(key):
    assert reason(profile(None, key=key)) == "bad_id"
    assert reason(profile(profile_doc(PROFILE_V1), key=key)) == "bad_id"


def test_tombstone_with_a_valid_key_deletes_the_profile():
    assert profile(None, key=b"user-77") == ProfileDeleted("user-77")


def test_profile_segment_is_an_id():
    assert reason(profile(profile_doc(PROFILE_V1, segment="s\x1fx"))) == "bad_id"


# -- nesting --------------------------------------------------------------------------------


def nested(depth: int) -> dict:
    """A profile whose document nests ``depth`` levels (the document itself is level 1)."""
    inner: dict = {}
    for _ in range(depth - 2):
        inner = {"n": inner}
    return {**PROFILE_V2, "profile": inner}


def test_nesting_up_to_32_levels_is_accepted():
    assert isinstance(profile(orjson.dumps(nested(32))), UserProfile)


@pytest.mark.parametrize("depth", [33, 255, 600])
def test_nesting_deeper_than_32_levels_is_malformed_json(depth):
    # Written as text: orjson itself cannot write more than 255 levels.
    inner = '{"n":' * (depth - 2) + "{}" + "}" * (depth - 2)
    raw = b'{"userId":"user-77","segment":"investor","version":"2.0","profile":%s}' % inner.encode()
    assert reason(profile(raw)) == "malformed_json"


def test_nesting_in_arrays_counts_too():
    doc = {**VIEW, "extra": [[[[]]]]}
    assert isinstance(view(orjson.dumps(doc)), PropertyViewed)
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert reason(view(orjson.dumps({**VIEW, "extra": deep}))) == "malformed_json"


# -- properties: the codec is total ---------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
_json = st.recursive(
    _json_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)
_field_names = st.sampled_from(
    ["eventId", "propertyId", "userId", "timestamp", "version", "segment", "sessionId",
     "source", "durationMs", "updatedAt", "email", "profile", "other"]
)
_docs = st.dictionaries(_field_names, _json, max_size=10)
_keys = st.none() | st.binary(max_size=300) | st.text(max_size=40).map(str.encode)


def _raw_values():
    return (
        st.none()
        | st.binary(max_size=400)
        | _docs.map(orjson.dumps)
        | st.builds(lambda d, v: orjson.dumps({**VIEW, **d}), _docs, st.just(0))
        | st.builds(lambda d: orjson.dumps({**PROFILE_V2, **d}), _docs)
    )


@settings(max_examples=400, deadline=None)
@given(key=_keys, raw=_raw_values())
def test_decode_view_never_raises_and_returns_an_event_or_a_contract_reason(key, raw):
    result = codec.decode_view(key, raw, now_ms=NOW, max_bytes=MAX, future_tolerance_ms=TOLERANCE)
    if isinstance(result, Rejection):
        assert result.reason in codec.REASONS and result.reason != "late"
        assert result.detail
        for name, value in result.dlq_headers("property.views", 0, 1):
            value.decode()  # every header is UTF-8
    else:
        assert isinstance(result, PropertyViewed)
        assert key == result.property_id.encode()
        for an_id in (result.event_id, result.property_id, result.user_id):
            assert codec.id_problem(an_id) is None


@settings(max_examples=400, deadline=None)
@given(key=_keys, raw=_raw_values())
def test_decode_profile_never_raises_and_returns_a_change_or_a_contract_reason(key, raw):
    result = codec.decode_profile(key, raw, max_bytes=MAX)
    if isinstance(result, Rejection):
        assert result.reason in codec.REASONS and result.reason not in ("late", "future_timestamp")
    elif isinstance(result, ProfileDeleted):
        assert raw is None and key == result.user_id.encode()
    else:
        assert isinstance(result, UserProfile) and key == result.user_id.encode()
        assert codec.id_problem(result.segment) is None
        orjson.dumps(result.to_wire())  # what the table stores re-encodes


@given(text=st.text())
def test_id_problem_agrees_with_the_rules(text):
    raw = text.encode("utf-8", "surrogatepass")
    expected_bad = (
        text == ""
        or len(raw) > 256
        or any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)
        or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        or any(c in "\u061c\u200b\u200c\u200d\u200e\u200f\u2060\ufeff" for c in text)
        or any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in text)
    )
    assert (codec.id_problem(text) is not None) == expected_bad


@given(detail=st.text(min_size=0, max_size=2000))
def test_dlq_detail_is_cut_at_a_character_boundary(detail):
    value = dict(Rejection("bad_id", detail).dlq_headers("t", 0, 0))["dlq.detail"]
    assert len(value) <= 1024
    assert detail.encode("utf-8", "replace").startswith(value)
    value.decode()
