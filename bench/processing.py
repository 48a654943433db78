"""CPU cost of the views stage's own processing, in-process: no broker, no faust.

``python -m bench.processing [--views N] [--runs R]`` feeds one ``ViewsProcessor`` (a real
RocksDB store under a temporary directory) the seeded workload of ``make bench``, committing
every 2,000 views as the stage does, and prints the CPU microseconds per view (process time,
the minimum of ``--runs`` runs: these machines are shared, the minimum is the least
disturbed). Compare two checkouts by running it in each, alternately.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from app.engine.store import PartitionStore, rocksdb_options
from app.engine.transactions import Outbox
from app.generator import Workload
from app.settings import Settings
from app.stages.views import ViewsConfig, ViewsProcessor

COMMIT_EVERY = 2_000
DAY_MS = 86_400_000


def run_once(views: int, users: int, properties: int, seed: int) -> float:
    """CPU seconds for ``views`` views through one fresh processor."""
    now = int(time.time() * 1000)
    workload = Workload(seed=seed, users=users, properties=properties)
    records = list(workload.views(views, now - 3 * DAY_MS, 3 * DAY_MS / views, now_ms=now))
    segments = {f"user-{i}": "investor" for i in range(0, users, 2)}  # half have a profile
    with tempfile.TemporaryDirectory() as tmp:
        store = PartitionStore(Path(tmp) / "views-000", rocksdb_options(16 << 20, 8 << 20))
        outbox = Outbox()
        processor = ViewsProcessor(0, store, outbox, ViewsConfig.from_settings(Settings()), segments.get)
        changelog_offset = 0
        started = time.process_time()
        for offset, record in enumerate(records):
            processor.process(offset, record.key, record.value, now)
            if offset % COMMIT_EVERY == COMMIT_EVERY - 1:
                processor.punctuate(now, every=True)  # the shares, as at every commit before
                if processor.before_commit(now):
                    changelog_offset += len(store.pending)
                    store.seal()
                    store.apply_sealed(changelog_offset)
                outbox.clear()
        elapsed = time.process_time() - started
        store.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--properties", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.views < 1 or args.runs < 1:
        parser.error("--views and --runs must be at least 1")
    best = min(run_once(args.views, args.users, args.properties, args.seed) for _ in range(args.runs))
    print(f"views stage processing: {best / args.views * 1e6:.1f} us CPU per view "
          f"({args.views / best:,.0f} views per CPU-second; min of {args.runs} runs of "
          f"{args.views:,} views)")


if __name__ == "__main__":
    main()
