"""Decoding at the edge: every rejection reason of CONTRACT §3, and what is accepted."""

from __future__ import annotations

import orjson
import pytest

from app import codec
from app.models.events import PropertyViewed, Rejection, UserProfile

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


def view(raw: bytes | None, now_ms: int = NOW, max_bytes: int = MAX):
    return codec.decode_view(raw, now_ms=now_ms, max_bytes=max_bytes, future_tolerance_ms=TOLERANCE)


def view_doc(**changes) -> bytes:
    doc = {**VIEW, **changes}
    return orjson.dumps({k: v for k, v in doc.items() if v is not _DROP})


def profile(raw: bytes | None, max_bytes: int = MAX):
    return codec.decode_profile(raw, max_bytes=max_bytes)


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
        view_doc(eventId=""),
        view_doc(propertyId=_DROP),
        view_doc(propertyId=""),
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
        (None, "malformed_json"),
        (b"{oops", "malformed_json"),
        (b"[]", "bad_type"),
        (profile_doc(PROFILE_V1, userId=_DROP), "missing_field"),
        (profile_doc(PROFILE_V1, segment=_DROP), "missing_field"),
        (profile_doc(PROFILE_V1, segment=""), "missing_field"),
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
