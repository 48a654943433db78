"""Unit-test fixtures: no broker, a real RocksDB (rocksdict) per test under tmp_path.

Settings are read from the environment; the autouse fixture removes every variable that
names a Settings field, so the host's environment (or CI's) cannot change a unit test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.settings import Settings
from app.engine.store import PartitionStore, rocksdb_options

SMALL = 1 << 20  # 1 MiB block cache and write buffer: plenty for a test


@pytest.fixture(autouse=True)
def _clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {name.lower() for name in Settings.model_fields}
    for name in list(os.environ):
        if name.lower() in fields:
            monkeypatch.delenv(name)


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[[str], PartitionStore]]:
    """open_store("p003") -> a PartitionStore at tmp_path/p003; reopening the same name
    after closing gives the same database. Everything still open is closed at teardown."""
    opened: list[PartitionStore] = []

    def open_(name: str = "p000") -> PartitionStore:
        store = PartitionStore(tmp_path / name, rocksdb_options(SMALL, SMALL))
        opened.append(store)
        return store

    yield open_
    for store in opened:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass


@pytest.fixture
def store(open_store: Callable[[str], PartitionStore]) -> PartitionStore:
    return open_store("p000")
