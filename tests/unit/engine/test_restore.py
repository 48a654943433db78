"""``restore_partition``: the changelog is read (committed records only) up to its high
watermark, and only once no transaction is open on it (last stable offset equal to the high
watermark): a previous owner's transaction still open when the partition opens may commit."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.engine import committed as committed_module
from app.engine.committed import at_stable_end
from app.engine.restore import restore_partition
from app.engine.store import PartitionStore, rocksdb_options

TP_TOPIC = "views-changelog"


class Changelog:
    """A read_committed consumer of one changelog partition. ``fetches`` scripts the answers
    of successive fetches: (records handed over as (offset, key, value), new position, high
    watermark, last stable offset)."""

    def __init__(self, fetches: list[tuple[list, int, int, int]]) -> None:
        self.fetches = fetches
        self.position_ = None
        self.high = self.stable = None
        self.fetched = 0
        self.stopped = False

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True

    def assign(self, partitions) -> None:  # noqa: ANN001
        pass

    def seek(self, tp, offset: int) -> None:  # noqa: ANN001
        self.position_ = offset

    async def position(self, tp) -> int:  # noqa: ANN001
        return self.position_

    def highwater(self, tp):  # noqa: ANN001, ANN201
        return self.high

    def last_stable_offset(self, tp):  # noqa: ANN001, ANN201
        return self.stable

    async def getmany(self, tp, timeout_ms: int, max_records: int) -> dict:  # noqa: ANN001
        assert self.fetches, "fetched past the script: the restore did not stop"
        records, self.position_, self.high, self.stable = self.fetches.pop(0)
        self.fetched += 1
        return {tp: [SimpleNamespace(offset=o, key=k, value=v) for o, k, v in records]}


@pytest.fixture
def store(tmp_path):
    store = PartitionStore(tmp_path / "000", rocksdb_options(1 << 20, 1 << 20))
    yield store
    store.close()


def reading(monkeypatch, changelog: Changelog) -> None:  # noqa: ANN001
    def reader(kwargs, **options):  # noqa: ANN001, ANN202
        changelog.options = options
        return changelog

    monkeypatch.setattr(committed_module, "committed_reader", reader)


async def test_the_restore_waits_for_a_transaction_open_on_the_changelog(store, monkeypatch) -> None:
    changelog = Changelog([
        ([(0, b"a", b"1")], 2, 5, 2),  # committed up to 2; a transaction holds 2..4 open
        ([], 2, 5, 2),  # still open
        ([(2, b"a", b"2"), (3, b"b", b"1")], 5, 5, 5),  # it committed: its records, its marker
    ])
    reading(monkeypatch, changelog)

    applied = await restore_partition(store, TP_TOPIC, 0, {})

    assert applied == 3 and changelog.fetched == 3 and changelog.stopped
    assert (store.get(b"a"), store.get(b"b")) == (b"2", b"1")
    assert store.checkpoint() == 3


async def test_an_aborted_transaction_ends_the_wait_with_nothing_of_it(store, monkeypatch) -> None:
    changelog = Changelog([
        ([], 0, 3, 0),  # open from offset 0
        ([], 3, 3, 3),  # aborted: nothing delivered, the reader passes its marker
    ])
    reading(monkeypatch, changelog)
    assert await restore_partition(store, TP_TOPIC, 0, {}) == 0
    assert store.checkpoint() is None and changelog.fetched == 2


async def test_a_restore_starts_after_the_stores_checkpoint(store, monkeypatch) -> None:
    store.apply([(b"a", b"1")], 6)
    changelog = Changelog([([], 9, 9, 9)])
    reading(monkeypatch, changelog)
    assert await restore_partition(store, TP_TOPIC, 0, {}) == 0
    assert changelog.fetched == 1


async def test_a_restore_fetches_briefly_and_in_large_chunks(store, monkeypatch) -> None:
    changelog = Changelog([([], 0, 0, 0)])
    reading(monkeypatch, changelog)
    await restore_partition(store, TP_TOPIC, 0, {})
    # an empty changelog costs one 20 ms fetch, not the 500 ms of a read to a fixed end
    assert changelog.options["fetch_max_wait_ms"] == 20
    assert changelog.options["max_partition_fetch_bytes"] == 4 << 20


async def test_a_long_wait_for_an_open_transaction_is_logged_once(store, monkeypatch, caplog) -> None:
    changelog = Changelog([([], 0, 3, 0), ([], 0, 3, 0), ([], 3, 3, 3)])
    reading(monkeypatch, changelog)
    monkeypatch.setattr(committed_module, "WAIT_LOG_S", 0.0)
    with caplog.at_level("INFO", logger="app.engine.committed"):
        await restore_partition(store, TP_TOPIC, 0, {})
    waits = [r.getMessage() for r in caplog.records if "waiting for a transaction" in r.getMessage()]
    assert waits == [
        f"reading {TP_TOPIC}[0]: waiting for a transaction open on it to end "
        "(last stable offset 0, high watermark 3)"
    ]


def test_at_stable_end() -> None:
    assert not at_stable_end(0, None, None)  # no fetch answered yet
    assert at_stable_end(0, 0, 0)  # an empty changelog
    assert not at_stable_end(4, 9, 4)  # a transaction is open from 4
    assert not at_stable_end(4, 9, 9)  # not read to the end yet
    assert at_stable_end(9, 9, 9)
