"""Cost of joining a view with its property as of the view's time, against the length of the
property's history: in-process, no broker, no faust.

``python -m bench.history [--events 1000,10000,100000] [--lookups 200]`` gives one property
(a real RocksDB store under a temporary directory) a ``property.created`` and then
``property.updated`` events a minute apart, committed every 2,000 events as the stage does,
then asks for the property at ``--lookups`` times drawn evenly at random over its history
(what the views stage's join asks, ``PropertiesProcessor.state_at``). It prints, per history
length, the CPU milliseconds per lookup (process time) and the store reads per lookup (gets,
plus the items scans returned). Compare two checkouts by running it in each.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import orjson

from app.engine.store import PartitionStore, rocksdb_options
from app.engine.transactions import Outbox
from app.settings import Settings
from app.stages.properties import PropertiesConfig, PropertiesProcessor
from app.windows import iso_ms
from tests.support.counting_store import CountingStore

COMMIT_EVERY = 2_000
MINUTE_MS = 60_000
PROPERTY = "prop-popular"


def _event(index: int, ts: int) -> bytes:
    kind, data = (
        ("created", {"title": "Loft", "city": "Lyon", "price": 1000}) if index == 0
        else ("updated", {"price": 1000 + index})
    )
    return orjson.dumps({
        "eventId": f"e-{index}", "eventType": f"property.{kind}", "version": "1.0",
        "timestamp": iso_ms(ts), "propertyId": PROPERTY, "data": data,
    })


def _commit(processor: PropertiesProcessor, store: PartitionStore, now: int, offset: int) -> None:
    if processor.before_commit(now):
        store.seal()
        store.apply_sealed(offset)
    processor.outbox = Outbox()


def measure(events: int, lookups: int, seed: int) -> tuple[float, float]:
    """(CPU ms, store reads) per lookup, over a history of ``events`` events."""
    now = int(time.time() * 1000)
    first = now - (events + 60) * MINUTE_MS
    with tempfile.TemporaryDirectory() as tmp:
        store = CountingStore(Path(tmp) / "properties-000", rocksdb_options(16 << 20, 8 << 20))
        config = PropertiesConfig.from_settings(Settings())
        processor = PropertiesProcessor(0, store, Outbox(), config)
        for index in range(events):
            processor.process(index, PROPERTY.encode(), _event(index, first + index * MINUTE_MS), now)
            if index % COMMIT_EVERY == COMMIT_EVERY - 1:
                _commit(processor, store, now, index)
        _commit(processor, store, now, events)
        for _ in range(100):  # an older store than the snapshots: let a backfill finish
            _commit(processor, store, now, events)
        rng = random.Random(seed)
        times = [first + rng.randrange(events * MINUTE_MS) for _ in range(lookups)]
        store.reads = 0
        started = time.process_time()
        for ts in times:
            state = processor.state_at(PROPERTY, ts)
            assert state is not None and state.updated_at_ms <= ts
        elapsed = time.process_time() - started
        reads = store.reads
        store.close()
    return elapsed * 1000 / lookups, reads / lookups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="1000,10000,100000")
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    try:
        lengths = [int(part) for part in args.events.split(",")]
    except ValueError:
        parser.error(f"--events takes comma-separated whole numbers (got {args.events!r})")
    if args.lookups < 1 or any(n < 1 for n in lengths):
        parser.error("--events and --lookups must be at least 1")
    print("events  ms/lookup  reads/lookup")
    for events in lengths:
        ms, reads = measure(events, args.lookups, args.seed)
        print(f"{events:>6}  {ms:9.3f}  {reads:12.1f}", flush=True)


if __name__ == "__main__":
    main()
