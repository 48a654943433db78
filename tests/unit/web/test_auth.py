"""Who may call: the bearer token, peer signatures (bound to method, target, path and time),
and the peer key settings. Pure functions, no server."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from app.settings import Settings
from app.web.auth import (
    PEER_MAX_AGE_MS,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    UNAUTHORIZED,
    Guard,
    audience_of,
    bearer_matches,
    peer_headers,
    peer_problem,
)

KEY = b"k" * 32
NOW = 1_795_183_387_120
PATH = "/api/properties/a%3Ab/views?hour=2026-11-20T14%3A00%3A00Z"
ME = audience_of("http://10.0.0.2:6067")
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()))


def test_a_fresh_signature_of_this_request_to_this_worker_passes():
    headers = peer_headers(KEY, "GET", ME, PATH, NOW)
    assert peer_problem(KEY, "GET", ME, PATH, headers, NOW + PEER_MAX_AGE_MS) is None


@pytest.mark.parametrize(
    "change, why",
    [
        ({"key": b"x" * 32}, "wrong peer signature"),
        ({"method": "POST"}, "wrong peer signature"),
        ({"audience": audience_of("http://10.0.0.3:6067")}, "wrong peer signature"),  # replayed elsewhere
        ({"path": PATH.replace("a%3Ab", "other")}, "wrong peer signature"),
        ({"path": PATH + "&limit=1"}, "wrong peer signature"),
        ({"now": NOW + PEER_MAX_AGE_MS + 1}, "expired"),
        ({"now": NOW - PEER_MAX_AGE_MS - 1}, "expired"),  # from the future
    ],
)
def test_a_signature_of_anything_else_is_refused(change, why):
    headers = peer_headers(KEY, "GET", ME, PATH, NOW)
    args = {"key": KEY, "method": "GET", "audience": ME, "path": PATH, "now": NOW} | change
    problem = peer_problem(args["key"], args["method"], args["audience"], args["path"], headers, args["now"])
    assert problem is not None and why in problem


@given(ANY_TEXT, ANY_TEXT)
def test_forged_peer_headers_are_refused_and_never_raise(stamp, signature):
    headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature}
    assert peer_problem(KEY, "GET", ME, PATH, headers, NOW) is not None


@given(ANY_TEXT)
def test_any_authorization_header_is_compared_without_raising(header):
    assert bearer_matches("s3cret", header) is (header in ("Bearer s3cret", "bearer s3cret", "BEARER s3cret"))


def test_a_header_that_is_not_utf8_is_just_wrong():
    # bytes b"Bearer \xff\xfe" as the server decodes them (surrogate escapes)
    assert bearer_matches("s3cret", "Bearer \udcff\udcfe") is False
    assert bearer_matches("\udcff", "Bearer \udcff") is True


def test_the_guard_lets_public_routes_through_and_wants_token_or_signature_elsewhere():
    guard = Guard(SecretStr("s3cret"), KEY, "http://10.0.0.2:6067/")
    ask = lambda route, headers, path="/api/insights": guard.refusal(route, "GET", path, headers, NOW)  # noqa: E731
    for route in ("/health", "/ready", "/metrics", "/", "/static/{name}"):
        assert ask(route, {}) is None
    for route in ("/api/insights", "/api/dashboard/local", "/router/", None):
        assert ask(route, {}) == UNAUTHORIZED
    assert ask("/api/insights", {"Authorization": "Bearer s3cret"}) is None
    assert ask("/api/insights", {"Authorization": "Bearer wrong"}) == UNAUTHORIZED
    signed = peer_headers(KEY, "GET", audience_of("http://10.0.0.2:6067"), "/api/insights", NOW)
    assert ask("/api/insights", signed) is None
    assert "wrong peer signature" in ask("/api/insights", signed, path="/api/insights?limit=5")


def test_without_a_token_nothing_is_guarded():
    guard = Guard(None, None, "http://127.0.0.1:6066")
    assert guard.refusal("/api/insights", "GET", "/api/insights", {}, NOW) is None


def test_peer_key_is_the_peer_secret_or_derived_from_the_token_per_app():
    assert Settings().peer_key is None
    assert Settings(peer_secret="p" * 16).peer_key == b"p" * 16
    derived = Settings(api_token="s3cret", app_id="a").peer_key
    assert derived is not None and len(derived) == 32
    assert b"s3cret" not in derived
    assert Settings(api_token="s3cret", app_id="a").peer_key == derived  # every worker agrees
    assert Settings(api_token="s3cret", app_id="b").peer_key != derived
    assert Settings(api_token="other", app_id="a").peer_key != derived
    assert Settings(api_token="s3cret", peer_secret="p" * 16).peer_key == b"p" * 16


def test_peer_secret_is_long_and_never_printed(monkeypatch):
    with pytest.raises(ValidationError, match="peer_secret"):
        Settings(peer_secret="short")
    monkeypatch.setenv("PEER_SECRET", "a-long-peer-secret-value")
    settings = Settings()
    assert "a-long-peer-secret-value" not in repr(settings) + str(settings)
