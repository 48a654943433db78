"""The id rule (``bad_id``) on every id of every input and on URL ids: not empty, at most 256
UTF-8 bytes, UTF-8, and none of the characters that make one id display as another: C0 and C1
controls and DEL, bidirectional controls, zero-width and invisible format characters. Ids are
compared by their UTF-8 bytes, without normalisation."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app import codec
from app.models.events import PropertyEvent, PropertyViewed, Rejection, UserProfile
from app.web.params import BadRequest, path_id

NOW = 1_795_183_387_120
# Written from the rule, code point by code point.
C0 = [*range(0x00, 0x20), 0x7F]
C1 = list(range(0x80, 0xA0))
BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
INVISIBLE = [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]
FORBIDDEN = [chr(c) for c in C0 + C1 + BIDI + INVISIBLE]

VALID_CHAR = st.characters(codec="utf-8", exclude_characters=FORBIDDEN)
VALID_ID = st.text(VALID_CHAR, min_size=1, max_size=60).filter(lambda s: len(s.encode()) <= 250)


@st.composite
def with_forbidden(draw) -> str:  # noqa: ANN001
    """A valid id with one forbidden character put anywhere in it (at most 254 bytes)."""
    base = draw(VALID_ID)
    at = draw(st.integers(0, len(base)))
    return base[:at] + draw(st.sampled_from(FORBIDDEN)) + base[at:]


def view(ids: dict[str, str]):
    doc = {"eventId": "e-1", "timestamp": "2026-11-20T14:00:00Z", "propertyId": "prop-1",
           "userId": "user-1", **ids}
    return codec.decode_view(doc["propertyId"].encode(), orjson.dumps(doc), now_ms=NOW,
                             max_bytes=64 * 1024, future_tolerance_ms=0)


def profile(ids: dict[str, str], key: str | None = None):
    doc = {"userId": "user-1", "segment": "investor", **ids}
    return codec.decode_profile((key or doc["userId"]).encode(), orjson.dumps(doc),
                                max_bytes=64 * 1024)


def property_event(ids: dict[str, str]):
    data = {"rent": 1200, "tenantId": ids.pop("tenantId", "t-1")}
    doc = {"eventId": "e-1", "eventType": "property.rented", "timestamp": "2026-11-20T14:00:00Z",
           "propertyId": "prop-1", "data": data, **ids}
    return codec.decode_property_event(doc["propertyId"].encode(), orjson.dumps(doc), now_ms=NOW,
                                       max_bytes=64 * 1024, future_tolerance_ms=0)


FIELDS = [(view, "eventId"), (view, "propertyId"), (view, "userId"),
          (profile, "userId"), (profile, "segment"),
          (property_event, "eventId"), (property_event, "propertyId"),
          (property_event, "tenantId")]


@pytest.mark.parametrize("char", FORBIDDEN, ids=lambda c: f"U+{ord(c):04X}")
def test_each_forbidden_character_is_bad_id_with_its_kind(char):
    problem = codec.id_problem(f"prop{char}1")
    kind = ("bidirectional control" if ord(char) in BIDI else
            "invisible format" if ord(char) in INVISIBLE else "control character")
    assert problem is not None and kind in problem and f"U+{ord(char):04X}" in problem


@given(ident=with_forbidden(), where=st.sampled_from(FIELDS))
@example(ident="prop\u202e1-porp", where=(view, "propertyId"))
@example(ident="user\u200b1", where=(profile, "userId"))
@example(ident="\ufeffprop-1", where=(property_event, "propertyId"))
@example(ident="seg\u0085", where=(profile, "segment"))
def test_an_id_holding_a_forbidden_character_is_bad_id(ident, where):
    decode, name = where
    result = decode({name: ident})
    assert isinstance(result, Rejection) and result.reason == "bad_id", result
    # A profile's key is its userId, and the key is checked first.
    assert name in result.detail or (decode, name) == (profile, "userId"), result


@given(ident=with_forbidden())
def test_a_profile_key_holding_a_forbidden_character_is_bad_id(ident):
    for raw in (orjson.dumps({"userId": ident, "segment": "s"}), None):  # a tombstone too
        result = codec.decode_profile(ident.encode(), raw, max_bytes=64 * 1024)
        assert isinstance(result, Rejection) and result.reason == "bad_id", result


@given(ident=VALID_ID, where=st.sampled_from(FIELDS))
@example(ident="a:b/c %物件", where=(view, "propertyId"))
@example(ident="ÿþ-prop", where=(view, "propertyId"))
@example(ident="\u00a0nbsp\u00a0", where=(profile, "userId"))  # U+00A0 is not a control
@example(ident="عربي", where=(property_event, "propertyId"))  # right-to-left text itself is fine
def test_an_id_without_them_is_accepted_as_it_is(ident, where):
    decode, name = where
    result = decode({name: ident})
    assert isinstance(result, (PropertyViewed, UserProfile, PropertyEvent)), result
    got = {"eventId": getattr(result, "event_id", None), "propertyId": getattr(result, "property_id", None),
           "userId": getattr(result, "user_id", None), "segment": getattr(result, "segment", None),
           "tenantId": getattr(result, "data", {}).get("tenantId")}[name]
    assert got == ident  # kept as sent: no normalisation


def test_ids_compare_by_bytes_without_normalisation():
    composed, decomposed = "caf\u00e9", "cafe\u0301"  # the same text to a reader
    assert codec.id_problem(composed) is None and codec.id_problem(decomposed) is None
    a, b = view({"propertyId": composed}), view({"propertyId": decomposed})
    assert a.property_id != b.property_id  # two properties


@given(ident=with_forbidden())
def test_a_url_id_holding_a_forbidden_character_is_400(ident):
    from urllib.parse import quote

    with pytest.raises(BadRequest):
        path_id(quote(ident, safe=""))


@given(ident=VALID_ID)
def test_a_url_id_without_them_names_that_id(ident):
    from urllib.parse import quote

    assert path_id(quote(ident, safe="")) == ident
