"""The duplicate rule of CONTRACT §4 (same eventId accepted within the horizon), and how often
remembered ids are purged."""

from __future__ import annotations

from app.dedupe import is_duplicate, purge_due

HOUR = 3_600_000
HORIZON = 24 * HOUR
ST = 1_795_183_387_120  # stream time 2026-11-20T14:03:07.120Z


def test_never_accepted_is_not_a_duplicate():
    assert is_duplicate(None, ST, HORIZON) is False
    assert is_duplicate(None, 0, HORIZON) is False


def test_accepted_within_the_horizon_is_a_duplicate():
    assert is_duplicate(ST, ST, HORIZON) is True
    assert is_duplicate(ST - HOUR, ST, HORIZON) is True
    assert is_duplicate(ST - HORIZON + 1, ST, HORIZON) is True


def test_accepted_exactly_horizon_ago_or_earlier_is_forgotten():
    assert is_duplicate(ST - HORIZON, ST, HORIZON) is False
    assert is_duplicate(ST - HORIZON - 1, ST, HORIZON) is False
    assert is_duplicate(ST - 7 * HORIZON, ST, HORIZON) is False


def test_accepted_after_stream_time_is_a_duplicate():
    # An id first accepted with a time ahead of the current stream time cannot happen after
    # acceptance (acceptance moves stream time), but the rule must still hold for it.
    assert is_duplicate(ST + HOUR, ST, HORIZON) is True


def test_horizon_is_a_parameter():
    assert is_duplicate(ST - 2 * HOUR, ST, 3 * HOUR) is True
    assert is_duplicate(ST - 3 * HOUR, ST, 3 * HOUR) is False


def test_purge_every_quarter_horizon_of_stream_time():
    last = ST
    assert purge_due(last, last, HORIZON) is False
    assert purge_due(last + 6 * HOUR - 1, last, HORIZON) is False
    assert purge_due(last + 6 * HOUR, last, HORIZON) is True
    assert purge_due(last + 30 * HOUR, last, HORIZON) is True
