"""The options every benchmark run takes (``python -m bench``, ``python -m bench.failover``):
the broker, the workload's size and seed, and whether the run's topics stay."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass


@dataclass
class Workload:
    """What every run is given (a run's ``Options`` adds its own)."""

    bootstrap: str
    views: int
    properties: int
    users: int
    segments: int
    partitions: int
    days: float
    seed: int
    keep_topics: bool
    command: str


def add_workload(
    parser: argparse.ArgumentParser, *, views: int | None, views_help: str, users: int, days: float
) -> None:
    """The shared options; ``views``, ``users`` and ``days`` are the run's own defaults."""
    parser.add_argument("--bootstrap", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS or localhost:9092")
    parser.add_argument("--views", type=int, default=views, help=views_help)
    parser.add_argument("--properties", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=users)
    parser.add_argument("--segments", type=int, default=5)
    parser.add_argument("--partitions", type=int, default=12, help="partitions of the views topic (TOPIC_PARTITIONS)")
    parser.add_argument("--days", type=float, default=days, help="event times spread over this many days before now")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-topics", action="store_true", help="leave the run's topics on the broker")


def require_positive(parser: argparse.ArgumentParser, args: argparse.Namespace, names: tuple[str, ...]) -> None:
    """Exit 2 naming the first of ``names`` given as 0, below 0, infinite or NaN."""
    for name in names:
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            parser.error(f"--{name.replace('_', '-')} must be a number greater than 0 (got {value})")


def workload(args: argparse.Namespace, command: str) -> dict:
    """The ``Workload`` fields from parsed ``add_workload`` options, as keyword arguments."""
    return {
        "bootstrap": args.bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092"),
        "views": args.views, "properties": args.properties, "users": args.users,
        "segments": args.segments, "partitions": args.partitions, "days": args.days,
        "seed": args.seed, "keep_topics": args.keep_topics, "command": command,
    }
