"""Replay into a shadow, then diff (issue: "replay from any time into a shadow"): one live worker
processes a seeded workload; shadows replay it from a time in the middle, with the live
settings and with a lower spike ratio, through the real commands (``faust -A app.main replay``
and ``diff``); the independent oracle, run over the records each app read, predicts the
differences exactly.

Records carry timestamps as a live stream would: the newest view time seen so far (a late view
arrives after newer ones, so its record timestamp is ahead of its own time, never behind).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from app.generator import Workload
from tests.support.checks import load_profiles
from tests.support.commands import ReplayProcess, produce_at, run, timestamped
from tests.support.oracle import (
    HOUR,
    MIN,
    WEEK,
    Oracle,
    Produced,
    hour_of,
    iso,
    oracle,
    pct,
    week_of,
)
from tests.support.topics import read_topic
from tests.support.workers import REPO, Worker, free_port, isolated_env, wait_caught_up

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SEED = 20261129
VIEWS = 3000
HOURS = 72  # of event time, ending a Monday 20:00 UTC
LOWER_RATIO = 2.5  # the shadows' SPIKE_RATIO
ARTIFACTS = REPO / "tests" / "artifacts"


# --- the workload ------------------------------------------------------------------------------
def near_spike(end_ms: int) -> tuple[int, list[tuple[int, bytes, bytes]]]:
    """prop-near: 10 views an hour for 24 hours, then 25 in one hour: 25 == 2.5 x 10, a spike
    at a ratio of 2.5 (at the 25th view) and none at 3. Returns (the hour, (time, key, value))."""
    hour = hour_of(end_ms) - 10 * HOUR
    times = [hour - 24 * HOUR + h * HOUR + 3 * MIN + j * 5 * MIN
             for h in range(24) for j in range(10)]
    times += [hour + 2 * MIN + j * 2 * MIN for j in range(25)]
    out = []
    for i, ts in enumerate(times):
        doc = {"eventId": f"near-{SEED}-{i}", "eventType": "property.viewed", "version": "1.0",
               "timestamp": iso(ts), "propertyId": "prop-near", "userId": f"user-{i % 37}"}
        out.append((ts, b"prop-near", json.dumps(doc).encode()))
    return hour, out


def monday_before(now_ms: int) -> int:
    """A Monday 00:00 UTC at least a day in the past."""
    monday = week_of(now_ms)
    return monday if now_ms - monday >= 23 * HOUR else monday - WEEK


@dataclass
class Live:
    bootstrap: str
    env: dict[str, str]
    worker: Worker
    produced: list[Produced]
    timestamps: dict[tuple[int, int], int]  # (partition, offset) -> record timestamp
    profiles: list[tuple]  # the profile records as produced
    now_ms: int
    from_ms: int
    near_hour: int


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(kafka_bootstrap):
    env = isolated_env(kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:  # old record timestamps: the input must not be deleted by time retention
        await admin.create_topics([NewTopic(env["VIEWS_TOPIC"], int(env["TOPIC_PARTITIONS"]), 1,
                                            topic_configs={"retention.ms": "-1"})])
    finally:
        await admin.close()
    worker = Worker(env).start()
    passed = False
    try:
        await worker.wait_ready(180)
        workload = Workload.every_case(SEED)
        profiles = await load_profiles(kafka_bootstrap, worker.url, workload,
                                       env["PROFILES_TOPIC"])
        now = int(time.time() * 1000)
        end = monday_before(now) + 20 * HOUR  # a week starts 20 h before the end
        near_hour, extra = near_spike(end)
        views = workload.views(VIEWS, end - HOURS * HOUR, HOURS * HOUR / VIEWS, now_ms=now)
        records = timestamped(list(views), now, extra)
        produced = await produce_views(kafka_bootstrap, env["VIEWS_TOPIC"], records)
        await wait_caught_up(kafka_bootstrap, env, timeout=300)
        yield Live(
            kafka_bootstrap, env, worker, produced,
            {(p.partition, p.offset): ts for p, (_, _, ts) in zip(produced, records)},
            profiles, now,
            # Sunday 02:07: hours from 03:00, the week from Monday
            from_ms=end - 42 * HOUR + 7 * MIN,
            near_hour=near_hour,
        )
        passed = True
    finally:
        worker.stop(30)
        if passed and worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)


# --- the commands --------------------------------------------------------------------------------
async def produce_views(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int]]
                        ) -> list[Produced]:
    placed = await produce_at(bootstrap, topic, records)
    return [Produced(p, o, key, value) for (p, o), (key, value, _) in zip(placed, records)]


def Replay(live: Live, name: str, *args: str) -> ReplayProcess:  # noqa: N802
    app_id = live.env["APP_ID"]
    return ReplayProcess(
        live.env, name, iso(live.from_ms), free_port(),
        ARTIFACTS / "data" / f"{app_id}-shadow-{name}",
        ARTIFACTS / "logs" / f"{app_id}-replay-{name}.log", *args)


def diff(live: Live, name: str, *args: str):  # noqa: ANN201
    return run(live.env, "diff", "--shadow", name, *args)


# --- what the oracle predicts ------------------------------------------------------------------
def expected_starts(live: Live) -> dict[int, int]:
    """Per partition, the first offset whose record timestamp is at or after --from."""
    ends: dict[int, int] = {}
    starts: dict[int, int] = {}
    for rec in live.produced:
        ends[rec.partition] = max(ends.get(rec.partition, 0), rec.offset + 1)
        if live.timestamps[(rec.partition, rec.offset)] >= live.from_ms:
            starts[rec.partition] = min(starts.get(rec.partition, rec.offset), rec.offset)
    return {p: starts.get(p, end) for p, end in ends.items()}


def covered_insights(exp: Oracle, from_ms: int) -> dict[str, tuple]:
    """insightId -> (views when it first held, previous week's views) for the insights diff
    compares: spikes from --from + 24 h on, trends from the week after the first whole week,
    rented properties' demand from the first whole hour."""
    hour0 = hour_of(from_ms + HOUR - 1)
    week0 = week_of(from_ms + WEEK - 1)
    out = {f"property_hourly_spike:{pct(p)}:{iso(h)}": (v, None)
           for (p, h), v in exp.spikes.items() if h >= hour0 + 24 * HOUR}
    out.update({f"segment_property_trend:{pct(s)}:{pct(p)}:{iso(w)}": vp
                for (s, p, w), vp in exp.trends.items() if w >= week0 + WEEK})
    out.update({f"rented_property_demand:{pct(p)}:{iso(h)}": (v[0], None)
                for (p, h), v in exp.demand.items() if h >= hour0})
    return out


def predicted_differences(live_exp: dict, shadow_exp: dict) -> dict[str, tuple]:
    """insightId -> (change, live first views, shadow first views)."""
    out = {}
    for insight_id in set(live_exp) | set(shadow_exp):
        a, b = live_exp.get(insight_id), shadow_exp.get(insight_id)
        if a is None:
            out[insight_id] = ("only_shadow", None, b[0])
        elif b is None:
            out[insight_id] = ("only_live", a[0], None)
        elif a != b:
            out[insight_id] = ("changed", a[0], b[0])
    return out


def shadow_input(live: Live, starts: dict[int, int]) -> list[Produced]:
    return [r for r in live.produced if r.offset >= starts[r.partition]]


async def run_shadow(live: Live, name: str, *args: str) -> tuple[Replay, dict]:
    replay = Replay(live, name, *args)
    try:
        await replay.wait_for("reached the live end", 300)
        shadow_env = {"APP_ID": f"{live.env['APP_ID']}-shadow-{name}",
                      "VIEWS_TOPIC": live.env["VIEWS_TOPIC"]}
        took = await wait_caught_up(live.bootstrap, shadow_env, timeout=300, settle=2.0)
        print(f"\n[test_replay] shadow {name}: caught up {took:.1f}s after the live end")
        result = diff(live, name, "--json")
        assert result.returncode in (0, 1), result.stderr[-3000:]
        return replay, {"rc": result.returncode, **json.loads(result.stdout)}
    except BaseException:
        replay.stop()
        raise


# --- tests -------------------------------------------------------------------------------------
async def test_replay_with_the_live_settings_has_no_differences(live, capsys):
    starts = expected_starts(live)
    assert 0 < sum(starts.values()) < len(live.produced), starts  # a real middle
    replay, report = await run_shadow(live, "same")
    try:
        output = replay.output()
        assert re.search(r"started at .*\([\d,]+ offsets to the live end\)", output), output[-2000:]
        started = re.search(r"started at (.*) \(", output).group(1)
        assert started == ", ".join(f"[{p}]@{o}" for p, o in sorted(starts.items())), started
        # The oracle agrees: over the covered windows, the suffix gives the live insights.
        live_exp = covered_insights(oracle(live.produced, live.profiles, live.now_ms), live.from_ms)
        shadow_exp = covered_insights(
            oracle(shadow_input(live, starts), live.profiles, live.now_ms), live.from_ms)
        assert predicted_differences(live_exp, shadow_exp) == {}
        assert live_exp, "no insight in the compared range: the test would prove nothing"

        assert report["rc"] == 0 and report["differences"] == [], report["differences"][:10]
        assert report["partitionsWithSameInput"] == int(live.env["TOPIC_PARTITIONS"])
        compared = report["compared"]
        assert compared.get("hourly", 0) > 100 and compared.get("weekly", 0) >= 5, report
        assert compared.get("insight") == len(live_exp), (compared, sorted(live_exp))
        assert report["notCompared"].get("hourly before --from", 0) > 100, report["notCompared"]

        text = diff(live, "same")
        assert text.returncode == 0 and text.stdout.strip().endswith("no differences"), text
        with capsys.disabled():
            print("\n[test_replay] diff --shadow same:\n" + text.stdout)
    finally:
        assert replay.stop() is not None
    assert "the worker exited with code 0" in replay.output(), replay.output()[-2000:]


async def test_replay_with_a_lower_spike_ratio_differs_by_the_predicted_insights(live, capsys):
    starts = expected_starts(live)
    replay, report = await run_shadow(live, "ratio25", "--set", f"SPIKE_RATIO={LOWER_RATIO}")
    try:
        live_exp = covered_insights(oracle(live.produced, live.profiles, live.now_ms), live.from_ms)
        shadow_exp = covered_insights(
            oracle(shadow_input(live, starts), live.profiles, live.now_ms,
                   spike_ratio=LOWER_RATIO), live.from_ms)
        predicted = predicted_differences(live_exp, shadow_exp)
        near = f"property_hourly_spike:prop-near:{iso(live.near_hour)}"
        assert predicted.get(near) == ("only_shadow", None, 25), predicted
        assert any(p[0] == "changed" for p in predicted.values()), predicted  # prop-edge: 21 -> 20

        assert report["rc"] == 1, report
        assert [d for d in report["differences"] if d["kind"] != "insight"] == []
        got = {}
        for d in report["differences"]:
            views = [(side or {}).get("metrics", {}).get("views") if side else None
                     for side in (d["live"], d["shadow"])]
            got[d["key"]] = (d["change"], *views)
        assert got == predicted

        text = diff(live, "ratio25")
        assert text.returncode == 1, text
        with capsys.disabled():
            print("\n[test_replay] diff --shadow ratio25:\n" + text.stdout)
    finally:
        replay.stop()


def burst(tag: str, start_ms: int, views: int = 30) -> list[tuple[bytes, bytes, int]]:
    """``views`` views of prop-<tag> within ten minutes (a spike: no baseline) and one
    malformed record, each with its own time as record timestamp."""
    out = []
    for j in range(views):
        ts = start_ms + j * 20_000
        doc = {"eventId": f"{tag}-{SEED}-{j}", "eventType": "property.viewed", "version": "1.0",
               "timestamp": iso(ts), "propertyId": f"prop-{tag}", "userId": f"user-{j}"}
        out.append((f"prop-{tag}".encode(), json.dumps(doc).encode(), ts))
    out.append((b"prop-7", b'{"eventId": "broken', start_ms + 11 * MIN))
    return out


def broken_property_event(tag: str, ts_ms: int) -> tuple[bytes, bytes, int]:
    return b"prop-7", b'{"eventId": "' + tag.encode() + b'", "eventType": "property.upd', ts_ms


async def test_promote_makes_the_shadow_live_without_gap_or_duplicate(live, capsys):
    """docs/replay.md's procedure: shadow caught up, live stopped, promote refused while the
    shadow is behind (on the views and on the property events), then accepted; the promoted
    shadow runs as the live app. Every insight either app found is on the live topic once (a
    rented property's demand the shadow found included); every input record's dead letter
    once (the property events' included)."""
    name, env = "promo", live.env
    shadow_app = f"{env['APP_ID']}-shadow-{name}"
    shadow_env = {"APP_ID": shadow_app, "VIEWS_TOPIC": env["VIEWS_TOPIC"],
                  "PROPERTY_EVENTS_TOPIC": env["PROPERTY_EVENTS_TOPIC"]}
    end = live.from_ms + 42 * HOUR - 7 * MIN
    # prop-n2 is created and rented before the views of n2, which only the shadow takes: its
    # rented_property_demand is the shadow's alone, and promote must copy it.
    pe_topic = env["PROPERTY_EVENTS_TOPIC"]
    events = await produce_views(live.bootstrap, pe_topic, [
        (b"prop-n2", Workload.property_event(f"pn2-{SEED}-c", "created", end + 5 * MIN, "prop-n2",
                                             title="Flat n2", city="Lyon", price=1200).value,
         end + 5 * MIN),
        (b"prop-n2", Workload.property_event(f"pn2-{SEED}-r", "rented", end + 10 * MIN, "prop-n2",
                                             rent=1200, tenantId="tenant-n2").value,
         end + 10 * MIN),
        broken_property_event(f"pe0-{SEED}", end + 11 * MIN),
    ])
    replay = Replay(live, name, "--set", f"SPIKE_RATIO={LOWER_RATIO}")
    try:
        await replay.wait_for("reached the live end", 300)
        await wait_caught_up(live.bootstrap, shadow_env, timeout=300)
    finally:
        replay.stop()
    n1 = await produce_views(live.bootstrap, env["VIEWS_TOPIC"], burst("n1", end + 20 * MIN))
    events += await produce_views(live.bootstrap, pe_topic,
                                  [broken_property_event(f"pe1-{SEED}", end + 21 * MIN)])
    await wait_caught_up(live.bootstrap, env, timeout=120)
    assert live.worker.stop(60) is not None  # the live app stops: the rest of the procedure

    refused = run(env, "promote", "--shadow", name)
    assert refused.returncode == 2 and "cannot promote yet" in refused.stderr, refused
    assert re.search(r"shadow at \d+, live at \d+", refused.stderr), refused.stderr
    lagging = f"{pe_topic}[{events[-1].partition}]: shadow at {events[-1].offset}, " \
              f"live at {events[-1].offset + 1}"
    assert lagging in refused.stderr, refused.stderr

    n2 = await produce_views(live.bootstrap, env["VIEWS_TOPIC"], burst("n2", end + 70 * MIN))
    events += await produce_views(live.bootstrap, pe_topic,
                                  [broken_property_event(f"pe2-{SEED}", end + 71 * MIN)])
    replay = Replay(live, name)  # join it: it catches up with n1 and n2
    try:
        await replay.wait_for("joining shadow", 60)
        await wait_caught_up(live.bootstrap, shadow_env, timeout=300)
    finally:
        replay.stop()

    def promote(*args: str):  # noqa: ANN202
        return run(env, "promote", "--shadow", name, *args)

    dry = promote("--dry-run")
    assert dry.returncode == 0 and "dry run, nothing changed" in dry.stdout, dry
    done = promote()
    assert done.returncode == 0, done
    assert f"APP_ID={shadow_app}" in done.stdout and f"SPIKE_RATIO={LOWER_RATIO}" in done.stdout, \
        done.stdout
    with capsys.disabled():
        print("\n[test_replay] promote:\n" + done.stdout)
    again = promote()
    assert again.returncode == 2 and "was promoted" in again.stderr, again

    # The promoted shadow runs as the live app: its app id, the live output topics.
    promoted = Worker({**env, "APP_ID": shadow_app, "SPIKE_RATIO": str(LOWER_RATIO)})
    promoted.data_dir = ARTIFACTS / "data" / f"{shadow_app}-promoted"
    promoted.start()
    try:
        await promoted.wait_ready(180)
        n3 = await produce_views(live.bootstrap, env["VIEWS_TOPIC"], burst("n3", end + 130 * MIN))
        await wait_caught_up(live.bootstrap, {**env, "APP_ID": shadow_app}, timeout=120)
    finally:
        promoted.stop(60)

    before = live.produced + n1  # what the live app processed
    everything = before + n2 + n3
    live_events = events[:-1]
    starts = expected_starts(live)
    live_exp = oracle(before, live.profiles, live.now_ms, property_events=live_events)
    shadow_exp = oracle(shadow_input_of(everything, starts), live.profiles, live.now_ms,
                        property_events=events, spike_ratio=LOWER_RATIO)
    live_ids = set(live_exp.insights())
    wanted = live_ids | set(covered_insights(shadow_exp, live.from_ms))
    assert f"property_hourly_spike:prop-n2:{iso(hour_of(end + 70 * MIN))}" in wanted - live_ids
    assert f"rented_property_demand:prop-n2:{iso(hour_of(end + 70 * MIN))}" in wanted - live_ids
    assert f"property_hourly_spike:prop-n3:{iso(hour_of(end + 130 * MIN))}" in wanted - live_ids
    ids = [json.loads(r.value)["insightId"]
           for r in await read_topic(live.bootstrap, env["INSIGHTS_TOPIC"])]
    assert sorted(ids) == sorted(set(ids)), "an insightId published twice"
    assert set(ids) == wanted, (sorted(set(ids) - wanted), sorted(wanted - set(ids)))

    wanted_dlq = set(live_exp.dlq) | past(shadow_exp.dlq, before)
    origins = await dlq_origins(live.bootstrap, env["VIEWS_TOPIC"])
    assert sorted(origins) == sorted(set(origins)), "a record dead-lettered twice"
    assert set(origins) == wanted_dlq
    for batch in (n1, n2, n3):  # each batch's malformed record, once
        bad = batch[-1]
        assert (bad.partition, bad.offset) in set(origins)

    # The property events' dead letters: pe0 and pe1 from the live app, pe2 copied.
    wanted_pe = set(live_exp.property_dlq) | past(shadow_exp.property_dlq, live_events)
    pe_origins = await dlq_origins(live.bootstrap, pe_topic)
    assert sorted(pe_origins) == sorted(set(pe_origins)), "a property event dead-lettered twice"
    assert set(pe_origins) == wanted_pe == {(e.partition, e.offset) for e in events[2:]}


def shadow_input_of(records: list[Produced], starts: dict[int, int]) -> list[Produced]:
    return [r for r in records if r.offset >= starts.get(r.partition, 0)]


def past(origins: dict[tuple[int, int], str], read: list[Produced]) -> set[tuple[int, int]]:
    """The (partition, offset) among ``origins`` after every record of ``read`` (what the live
    app read before the promotion), per partition."""
    ends: dict[int, int] = {}
    for rec in read:
        ends[rec.partition] = max(ends.get(rec.partition, 0), rec.offset + 1)
    return {(p, o) for p, o in origins if o >= ends.get(p, 0)}


async def dlq_origins(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    """The (partition, offset) of the record each dead letter of ``topic`` came from."""
    headers = [dict(record.headers) for record in await read_topic(bootstrap, f"{topic}.dlq")]
    return [(int(h["dlq.origin.partition"]), int(h["dlq.origin.offset"])) for h in headers]
