"""How far a shadow has replayed: its consumer group's committed offsets on the views topic,
against the offsets where it started and the end of the topic when it started."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True)
class Progress:
    done: int  # offsets replayed up to the target
    total: int  # offsets from the start to the target
    behind: int  # offsets between the group's positions and the target (0 once reached)

    @property
    def reached(self) -> bool:
        return self.behind == 0

    @property
    def fraction(self) -> float:
        return 1.0 if self.total == 0 else self.done / self.total


def measure(
    starts: Mapping[int, int], targets: Mapping[int, int], positions: Mapping[int, int]
) -> Progress:
    """Offsets done and still to do, per partition clamped to ``[start, target]``; a partition
    without a committed position stands at its start."""
    done = total = behind = 0
    for partition, start in starts.items():
        target = max(targets.get(partition, start), start)
        position = min(max(positions.get(partition, start), start), target)
        done += position - start
        total += target - start
        behind += target - position
    return Progress(done, total, behind)


def progress_line(name: str, progress: Progress, elapsed_s: float, rate: float | None) -> str:
    line = (
        f"replay {name}: {progress.done:,} of {progress.total:,} offsets to the live end "
        f"({progress.fraction:.0%}) after {elapsed_s:.0f}s"
    )
    if rate:
        line += f", {rate:,.0f}/s"
        if progress.behind:
            line += f", about {progress.behind / rate:.0f}s to go"
    return line


async def group_positions(
    admin: AIOKafkaAdminClient, group: str, topic: str
) -> dict[int, int]:
    """The group's committed offset per partition of ``topic`` (partitions without one left out)."""
    committed = await admin.list_consumer_group_offsets(group)
    return {
        tp.partition: meta.offset
        for tp, meta in committed.items()
        if tp.topic == topic and meta.offset >= 0
    }
