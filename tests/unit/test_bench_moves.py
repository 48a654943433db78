"""``bench.moves`` and ``python -m bench.failover`` arguments: the workers' log lines read
back (restores, openings), what a client counts as an answer going backwards, the sampled
lanes, the clients' summary and first answers after a kill, and clear errors for arguments
the failover step cannot use."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.generator import Workload
from app.engine.partitioner import key_partition
from bench.failover import parse
from bench.moves import (
    NO_ANSWER,
    Answered,
    Poller,
    Restore,
    goes_backwards,
    log_time,
    opened,
    restore_summary,
    restores,
    sample_lanes,
)

LOG = """\
[2026-12-06 12:48:54,846] [19222] [INFO] restored pa-x-segment-users-state-changelog[0] offsets 0..69: 67 records in 0.02s 
[2026-12-06 12:48:54,850] [19222] [INFO] segment-users: partition 0 open, resuming after offset 19 
[2026-12-06 12:49:10,001] [19222] [INFO] restored pa-x-views-state-changelog[11] offsets 70..1069: 1000 records in 1.50s 
[2026-12-06 12:49:10,002] [19222] [INFO] views: partition 11 open, resuming after offset -1 
[2026-12-06 12:49:20,000] [19222] [INFO] views: partition 11 open, resuming after offset 40 
[2026-12-06 12:49:21,000] [19222] [WARNING] restored nothing here: not a restore line
"""


def test_restores_and_openings_are_read_from_a_workers_log_with_their_times():
    found = restores(LOG)
    assert [(r.topic, r.partition, r.first, r.last, r.records, r.seconds) for r in found] == [
        ("pa-x-segment-users-state-changelog", 0, 0, 69, 67, 0.02),
        ("pa-x-views-state-changelog", 11, 70, 1069, 1000, 1.5),
    ]
    later = log_time("2026-12-06 12:49:00,000")
    assert [r.partition for r in restores(LOG, since=later)] == [11]
    assert opened(LOG) == {
        ("segment-users", 0): log_time("2026-12-06 12:48:54,850"),
        ("views", 11): log_time("2026-12-06 12:49:10,002"),  # the first opening since
    }
    assert opened(LOG, since=log_time("2026-12-06 12:49:15,000")) == {
        ("views", 11): log_time("2026-12-06 12:49:20,000")
    }


@given(
    st.text(alphabet="abcdefghij-.", min_size=1, max_size=30),
    st.integers(0, 999), st.integers(0, 10**12), st.integers(0, 10**6), st.integers(0, 10**7),
    st.decimals(min_value=0, max_value=9999, places=2),
)
def test_any_restore_line_is_read_back_exactly(topic, partition, first, span, records, seconds):
    line = (f"[2026-12-06 12:48:54,846] [1] [INFO] restored {topic}[{partition}] offsets "
            f"{first}..{first + span}: {records} records in {seconds}s \n")
    [found] = restores("noise\n" + line + "more noise [x] restored\n")
    assert (found.topic, found.partition, found.first, found.last, found.records) == (
        topic, partition, first, first + span, records)
    assert found.seconds == float(seconds)


@given(st.text(max_size=300))
def test_any_text_reads_as_restores_and_openings_without_raising(text):
    assert all(isinstance(r, Restore) for r in restores(text))
    assert isinstance(opened(text), dict)


def test_the_restore_summary_sums_records_bytes_and_seconds():
    found = [Restore(0, "t", 0, 0, 99, 100, 0.5), Restore(0, "t", 1, 0, 299, 300, 1.5)]
    assert restore_summary(found, 40_000) == {
        "restores": 2, "records": 400, "seconds": 2.0, "records_per_s": 200, "longest_s": 1.5,
        "bytes": 40_000, "bytes_per_s": 20_000,
    }
    assert restore_summary([])["records_per_s"] is None


@pytest.mark.parametrize(
    "seen, offset, views, backwards",
    [
        (None, 5, 1, False),
        ((5, 3), 5, 3, False),  # the same answer again
        ((5, 3), 9, 3, False),  # later offset, same hour's views
        ((5, 3), 4, 3, True),  # an earlier offset of the partition
        ((5, 3), 9, 2, True),  # fewer views of the hour
    ],
)
def test_an_answer_goes_backwards_when_it_is_older_than_one_already_given(seen, offset, views, backwards):
    assert goes_backwards(seen, offset, views) is backwards


def test_lanes_sample_the_busiest_hours_of_each_partition():
    workload = Workload(seed=3, users=50, properties=300)
    records = list(workload.views(3000, 1_700_000_000_000, 5000.0))  # over ~4 hours
    lanes = sample_lanes(records + [(b"x", b"not json"), (b"p", b'{"propertyId": 1}')], 6, per_partition=3)
    assert sorted(lanes) == list(range(6)) and all(len(paths) == 3 for paths in lanes.values())
    for partition, paths in lanes.items():
        for path in paths:
            prop = path.split("/")[3]
            assert key_partition(prop.encode(), 6) == partition
    busiest = {}
    for key, value, *_ in records:
        doc = orjson.loads(value)
        hour = doc["timestamp"][:13]
        busiest[(doc["propertyId"], hour)] = busiest.get((doc["propertyId"], hour), 0) + 1
    top = max(busiest, key=busiest.get)
    assert any(f"/api/properties/{top[0]}/views?hour={top[1]}" in p for p in sum(lanes.values(), []))


def test_the_clients_summary_and_the_first_answers_after_a_kill():
    poller = Poller({0: ["/a?hour=x"], 1: ["/b?hour=x"]}, lambda: ["u"], "views")
    poller.answers = [
        Answered(1.0, 1.1, "u", "/a", 0, 200, 5, 1),
        Answered(2.0, 2.2, "u", "/a", 0, NO_ANSWER),
        Answered(2.5, 9.0, "u", "/b", 1, 200, 7, 2),  # waited for the moving partition
        Answered(3.0, 3.5, "u", "/a", 0, 200, 6, 2),
        Answered(4.0, 4.1, "u", "/b", 1, 503),
    ]
    assert poller.first_served([0, 1, 2], after=2.0) == {0: 3.5, 1: 9.0, 2: None}
    summary = poller.summary(since=2.0)
    assert summary["requests"] == 4 and summary["five_xx"] == 1
    assert summary["by_status"] == {"200": 2, "503": 1, "no answer": 1}
    assert summary["wait_max_s"] == 6.5
    assert poller.summary(until=2.0)["requests"] == 1


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--workers", "1"], "--workers must be at least 2"),
        (["--views", "5000", "--live-views", "5000"], "--live-views"),
        (["--poll-timeout", "31"], "--poll-timeout"),
        (["--live-rate", "0"], "--live-rate"),
    ],
)
def test_arguments_the_failover_step_cannot_use_are_refused_with_what_is_wrong(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse(argv)
    assert exit_.value.code == 2 and fragment in capsys.readouterr().err


def test_the_failover_step_defaults_to_a_small_run():
    options = parse([])
    assert (options.views, options.users, options.workers, options.partitions) == (200_000, 100_000, 3, 12)
    assert options.command == "python -m bench.failover "


def test_static_membership_is_asked_for_by_name():
    assert parse(["--group-instance-id", "auto"]).group_instance_id == "auto"
    assert parse([]).group_instance_id is None
