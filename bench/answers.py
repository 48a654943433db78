"""The honesty check: the same sample of answers from the product (over HTTP), from the Quix
peer (its output topics) and from the oracle (fed while preloading)."""

from __future__ import annotations

import asyncio
import random
import time

import orjson

from app.engine.committed import TopicNotFound, read_to_end
from app.windows import HOUR_MS, hour_start, iso_ms
from bench.procs import get_json
from tests.support.oracle import Oracle

Hourly = dict[tuple[str, int], tuple[int, int]]
Weekly = dict[tuple[str, int], tuple[int, int, list]]


def sample_hours(oracle: Oracle, count: int, retention_ms: int, seed: int) -> list[tuple[str, int]]:
    """(property, hour) pairs the product still keeps: the busiest few, random ones, one empty."""
    # clear of the retention edge on every partition
    oldest = hour_start(min(oracle.stream_time.values()) - retention_ms) + HOUR_MS
    last = max(oracle.stream_time.values())
    newest = hour_start(last) - HOUR_MS  # clear of the hour live views may go to
    live = sorted(k for k in oracle.hourly if oldest <= k[1] <= newest)
    if not live:
        return []
    rng = random.Random(seed)
    busiest = sorted(live, key=lambda k: (-oracle.hourly[k][0], k))[: max(count // 4, 1)]
    rest = [k for k in live if k not in set(busiest)]
    picked = busiest + rng.sample(rest, min(count - len(busiest) - 1, len(rest)))
    picked.append(("prop-never-viewed", hour_start(last)))
    return picked


def expected(oracle: Oracle, sample: list[tuple[str, int]], weeks: list[tuple[str, int]]) -> tuple[Hourly, Weekly]:
    hourly = {}
    for key in sample:
        answer = oracle.hour_answer(*key)
        hourly[key] = (answer["views"], answer["uniqueUsers"])
    weekly = {}
    for key in weeks:
        answer = oracle.week_answer(*key)
        top = [[row["propertyId"], row["views"]] for row in answer["topProperties"]]
        weekly[key] = (answer["views"], answer["uniqueUsers"], top)
    return hourly, weekly


async def from_product(
    url: str, sample: list[tuple[str, int]], weeks: list[tuple[str, int]], want: tuple[Hourly, Weekly], wait_s: float = 15.0
) -> tuple[Hourly, Weekly]:
    """Ask a worker (it routes to the owner). Segment shares are published on a timer, so retry
    for a few seconds until the answers stop differing from the expected ones."""
    deadline = time.monotonic() + wait_s
    while True:
        hourly: Hourly = {}
        for prop, hour in sample:
            status, body = await get_json(f"{url}/api/properties/{prop}/views?hour={iso_ms(hour)}")
            hourly[(prop, hour)] = (body["views"], body["uniqueUsers"]) if status == 200 else (-1, -1)
        weekly: Weekly = {}
        for segment, week in weeks:
            status, body = await get_json(f"{url}/api/segments/{segment}/weeks/{iso_ms(week)}")
            if status == 200:
                top = [[row["propertyId"], row["views"]] for row in body["topProperties"]]
                weekly[(segment, week)] = (body["views"], body["uniqueUsers"], top)
            else:
                weekly[(segment, week)] = (-1, -1, [])
        if (hourly, weekly) == want or time.monotonic() > deadline:
            return hourly, weekly
        await asyncio.sleep(1.0)


async def from_quix(client_kwargs: dict, prefix: str, sample, weeks) -> tuple[Hourly, Weekly]:  # noqa: ANN001
    """The last window update per key in the peer's output topics (committed records only)."""
    hourly_all: dict[tuple[str, int], tuple[int, int]] = {}
    weekly_all: dict[tuple[str, int], tuple[int, int, list]] = {}
    for record in await read_topic(client_kwargs, f"{prefix}-hourly"):
        value = orjson.loads(record.value)
        hourly_all[(record.key.decode(), value["start"])] = (value["views"], value["uniqueUsers"])
    for record in await read_topic(client_kwargs, f"{prefix}-weekly"):
        value = orjson.loads(record.value)
        weekly_all[(record.key.decode(), value["start"])] = (value["views"], value["uniqueUsers"], value["top"])
    hourly = {key: hourly_all.get(key, (0, 0)) for key in sample}
    weekly = {key: weekly_all.get(key, (0, 0, [])) for key in weeks}
    return hourly, weekly


async def read_topic(client_kwargs: dict, topic: str) -> list:
    try:
        batches = read_to_end(
            client_kwargs, topic, max_records=20000, max_partition_fetch_bytes=4 * 1024 * 1024
        )
        return [record async for records in batches for record in records]
    except TopicNotFound:
        return []


def compare(got: tuple[Hourly, Weekly], want: tuple[Hourly, Weekly]) -> dict:
    mismatches = []
    for kind, got_part, want_part in (("hourly", got[0], want[0]), ("weekly", got[1], want[1])):
        for key, value in want_part.items():
            if got_part.get(key) != value:
                mismatches.append({"kind": kind, "key": [key[0], iso_ms(key[1])], "got": got_part.get(key), "want": value})
    checked = len(want[0]) + len(want[1])
    return {
        "checked": checked,
        "equal": checked - len(mismatches),
        "hourly": len(want[0]),
        "weekly": len(want[1]),
        "mismatches": mismatches[:10],
    }
