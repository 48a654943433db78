"""The replay manifest survives a round trip and refuses what it cannot read."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.replay.manifest import BadManifest, Manifest

offsets = st.dictionaries(st.integers(0, 999), st.integers(0, 2**62), max_size=20)


@given(offsets, offsets, st.integers(0, 2**50),
       st.dictionaries(st.from_regex(r"[A-Z_]{1,20}", fullmatch=True), st.text(max_size=20)))
def test_round_trip(starts, ends, from_ms, overrides):
    manifest = Manifest("s", "pa-shadow-s", "pa", "views", from_ms, starts, ends, overrides, 5)
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    promoted = manifest.promoted(99)
    assert Manifest.from_bytes(promoted.to_bytes()).promoted_ms == 99


@pytest.mark.parametrize("raw", [b"", b"[]", b"{}", b'{"format": 2}', b"\xff",
                                 b'{"format": 1, "shadow": "s"}'])
def test_unreadable_manifests_are_refused(raw):
    with pytest.raises(BadManifest):
        Manifest.from_bytes(raw)
