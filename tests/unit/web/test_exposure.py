"""A worker never serves its API without a token on an address others can reach, unless
the operator says so (ALLOW_UNAUTHENTICATED_HTTP)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, strategies as st

from app.web.exposure import exposure_problem, is_loopback


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST", "localhost."]
)
def test_loopback_addresses(host):
    assert is_loopback(host)


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "fe80::1", "example.com", "worker-1",
     "localhost.example.com", "127.0.0.1.nip.io", "::ffff:8.8.8.8"],
)
def test_addresses_others_can_reach(host):
    assert not is_loopback(host)


@given(st.ip_addresses())
def test_any_ip_is_loopback_exactly_when_the_standard_library_says_so(address):
    assert is_loopback(str(address)) == ipaddress.ip_address(str(address)).is_loopback


def test_an_open_address_without_a_token_is_refused_with_the_ways_out():
    problem = exposure_problem("0.0.0.0", has_token=False, allow_unauthenticated=False)
    assert problem is not None
    assert problem.startswith("WORKER_WEB_HOST=0.0.0.0 is not a loopback address")
    for way_out in ("API_TOKEN", "WORKER_WEB_HOST=127.0.0.1", "ALLOW_UNAUTHENTICATED_HTTP=true"):
        assert way_out in problem


def test_an_empty_host_binds_every_address_and_is_named_so():
    assert "WORKER_WEB_HOST=''" in exposure_problem("", has_token=False, allow_unauthenticated=False)


@given(
    host=st.one_of(st.ip_addresses().map(str), st.sampled_from(["localhost", "", "worker-1"])),
    has_token=st.booleans(),
    allowed=st.booleans(),
)
def test_the_rule(host, has_token, allowed):
    refused = exposure_problem(host, has_token, allowed) is not None
    assert refused == (not has_token and not allowed and not is_loopback(host))
