"""StageRunner with ``start_after``: the views stage processes no batch before the profiles
table has bootstrapped (the GlobalKTable rule), and waits only once."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from app.metrics import Metrics
from app.engine.runner import StageRunner


class Owned:
    """The part of OwnedPartitions a batch outside the current assignment touches."""

    name = "views"
    source_topic = "property.views"
    partitions: set[int] = set()

    def __init__(self) -> None:
        self.lock = asyncio.Lock()

    def processor(self, partition: int) -> None:
        return None


async def test_batches_wait_for_the_event_then_run():
    bootstrapped = asyncio.Event()
    app = SimpleNamespace(consumer_generation_id=1, consumer=SimpleNamespace(assignment=set))
    runner = StageRunner(app, Owned(), Metrics(), 100, 1.0, 0.1, start_after=bootstrapped)

    first = asyncio.ensure_future(runner.process_batch([]))
    await asyncio.sleep(0.05)
    assert not first.done()  # held until the profiles table is bootstrapped

    bootstrapped.set()
    await asyncio.wait_for(first, 1)
    bootstrapped.clear()  # the runner does not look again once it has started
    await asyncio.wait_for(runner.process_batch([]), 1)
