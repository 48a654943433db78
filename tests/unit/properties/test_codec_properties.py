"""Decoding ``property.events`` records: each reason, for the first check that fails."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app import codec
from app.models.events import PropertyEvent, Rejection

NOW = 1_800_000_000_000
BASE = {
    "eventId": "ev-1", "eventType": "property.created", "version": "1.0",
    "timestamp": "2026-11-20T14:03:07.120Z", "propertyId": "prop-812",
    "data": {"title": "Loft", "city": "Lyon", "price": 1850, "bedrooms": 2, "extra": [1]},
}
DROP = object()


def decode(doc: dict | bytes | None, key: bytes | None = b"prop-812", **changes):
    if isinstance(doc, dict):
        doc = orjson.dumps({k: v for k, v in {**doc, **changes}.items() if v is not DROP})
    return codec.decode_property_event(
        key, doc, now_ms=NOW, max_bytes=64 * 1024, future_tolerance_ms=300_000
    )


def reason(result) -> str:
    assert isinstance(result, Rejection), result
    assert result.detail
    return result.reason


def test_a_created_event_decodes_with_its_known_fields_only():
    event = decode(BASE)
    assert event == PropertyEvent(
        "ev-1", "created", 1_795_183_387_120, "prop-812",
        {"title": "Loft", "city": "Lyon", "price": 1850, "bedrooms": 2}, "1.0",
    )


def test_updated_and_rented_decode():
    assert decode(BASE, eventType="property.updated", data={"price": 1790.5, "status": "listed"}).data == {
        "price": 1790.5, "status": "listed"}
    assert decode(BASE, eventType="property.rented", data={"rent": 1790, "tenantId": "t:1"}).data == {
        "rent": 1790, "tenantId": "t:1"}


@pytest.mark.parametrize("doc, key, expected", [
    (b"{", b"prop-812", "malformed_json"),
    (None, b"prop-812", "malformed_json"),
    (b"[1]", b"prop-812", "bad_type"),
    ({**BASE, "version": "3.0"}, b"prop-812", "unsupported_version"),
    ({**BASE, "timestamp": "yesterday"}, b"prop-812", "bad_timestamp"),
    ({**BASE, "timestamp": "2099-01-01T00:00:00Z"}, b"prop-812", "future_timestamp"),
    ({**BASE, "eventId": DROP}, b"prop-812", "missing_field"),
    ({**BASE, "propertyId": ""}, b"", "bad_id"),
    ({**BASE, "propertyId": "a\x01"}, b"a\x01", "bad_id"),
    ({**BASE, "eventType": DROP}, b"prop-812", "missing_field"),
    ({**BASE, "eventType": 3}, b"prop-812", "bad_type"),
    ({**BASE, "eventType": "property.sold"}, b"prop-812", "bad_type"),
    ({**BASE, "data": DROP}, b"prop-812", "missing_field"),
    ({**BASE, "data": [1]}, b"prop-812", "bad_type"),
    ({**BASE, "data": {"title": "t", "city": "c"}}, b"prop-812", "missing_field"),
    ({**BASE, "data": {"title": "t", "city": "c", "price": "1"}}, b"prop-812", "bad_type"),
    ({**BASE, "data": {"title": "t", "city": "c", "price": -1}}, b"prop-812", "bad_type"),
    ({**BASE, "data": {"title": "t", "city": "c", "price": True}}, b"prop-812", "bad_type"),
    ({**BASE, "data": {"title": 1, "city": "c", "price": 1}}, b"prop-812", "bad_type"),
    ({**BASE, "data": {"title": "t", "city": "c", "price": 1, "bedrooms": 1.5}}, b"prop-812", "bad_type"),
    ({**BASE, "eventType": "property.rented", "data": {"tenantId": ""}}, b"prop-812", "bad_id"),
    ({**BASE, "eventType": "property.updated", "data": {"status": 1}}, b"prop-812", "bad_type"),
    (BASE, None, "key_mismatch"),
    (BASE, b"prop-813", "key_mismatch"),
])
def test_each_reason(doc, key, expected):
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if v is not DROP}
    assert reason(decode(doc, key)) == expected


@pytest.mark.parametrize("prop", ["a:b", "x/y", "50%", "日本", "..", "a\x7fb"[:1]])
def test_hostile_but_valid_ids_decode(prop):
    event = decode(BASE, key=prop.encode(), propertyId=prop, eventId=prop)
    assert isinstance(event, PropertyEvent) and event.property_id == prop


@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=20)))
def test_any_bytes_decode_or_are_rejected_never_raise(value, key):
    result = decode(value, key)
    assert isinstance(result, (PropertyEvent, Rejection))


def decode_limited(doc: dict, max_fields: int, max_version_chars: int):
    return codec.decode_property_event(
        b"prop-812", orjson.dumps(doc), now_ms=NOW, max_bytes=64 * 1024,
        future_tolerance_ms=300_000, max_fields=max_fields, max_version_chars=max_version_chars,
    )


@given(
    extra_top=st.integers(0, 40),
    extra_data=st.integers(0, 40),
    max_fields=st.integers(16, 60),
)
def test_more_fields_than_the_limit_with_the_data_s_is_oversized(extra_top, extra_data, max_fields):
    doc = {**BASE, **{f"x{i}": i for i in range(extra_top)},
           "data": {**BASE["data"], **{f"y{i}": i for i in range(extra_data)}}}
    fields = len(doc) + len(doc["data"])
    result = decode_limited(doc, max_fields, 16)
    if fields > max_fields:
        assert reason(result) == "oversized" and f"limit {max_fields}" in result.detail
    else:
        assert isinstance(result, PropertyEvent)


@given(version=st.text(alphabet="0123456789.x😀", max_size=40).map(lambda v: "1." + v),
       limit=st.integers(3, 30))
def test_a_version_longer_than_the_limit_is_oversized(version, limit):
    result = decode_limited({**BASE, "version": version}, 64, limit)
    if len(version) > limit:
        assert reason(result) == "oversized" and f"limit {limit}" in result.detail
    else:
        assert isinstance(result, PropertyEvent) and result.version == version


def test_the_limits_default_to_the_settings_and_come_before_the_other_checks():
    from app.settings import Settings
    from app.stages.properties import PropertiesConfig

    config = PropertiesConfig.from_settings(Settings(max_event_fields=20, max_version_chars=5))
    assert (config.max_event_fields, config.max_version_chars) == (20, 5)
    assert Settings().max_event_fields == 64 and Settings().max_version_chars == 16
    # a 60 KiB version of an unsupported major, on an event without an id: still oversized
    assert reason(decode({**BASE, "version": "9" * 60_000, "eventId": None})) == "oversized"
    assert reason(decode({**BASE, "version": "1." + "0" * 15})) == "oversized"
    assert isinstance(decode({**BASE, "version": "1." + "0" * 14}), PropertyEvent)


@pytest.mark.parametrize("name, value", [
    ("max_event_fields", 15), ("max_event_fields", 10_001),
    ("max_version_chars", 2), ("max_version_chars", 1025),
])
def test_the_limits_refuse_values_out_of_their_bounds(name, value):
    from pydantic import ValidationError

    from app.settings import Settings

    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
