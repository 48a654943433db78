"""This worker's id, kept in its data dir: what its stages' transactional ids end with.

A stage commits with one transactional producer per worker (``app.engine.transactions``).
Its id must stay the same across restarts of the same worker, so that a restart fences its
previous run's producer at once (its open transaction aborted) instead of leaving it to the
transaction timeout; and it must differ between workers, or they would fence each other. The
data dir is what a worker keeps across restarts and shares with no other, so a random id is
made once and kept there. A worker whose data dir was wiped gets a new id: its previous run's
transaction then ends by the coordinator's timeout, and the group generation fences it.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

FILE_NAME = "worker-id"
_ID = re.compile(r"[0-9a-f]{12}")


class WorkerIdError(ValueError):
    """The id file holds something this worker did not write; the message names it."""


def parse_worker_id(text: str, path: Path) -> str:
    """The id in the text of ``path``: twelve lowercase hex digits, a newline allowed after."""
    value = text.removesuffix("\n")
    if not _ID.fullmatch(value):
        raise WorkerIdError(
            f"{path} holds {text[:40]!r}, not a worker id (12 lowercase hex digits); "
            "delete the file to give this worker a new one"
        )
    return value


def worker_id(data_dir: Path) -> str:
    """The id kept in ``data_dir``, made (and written atomically) the first time."""
    path = data_dir / FILE_NAME
    try:
        return parse_worker_id(path.read_text(encoding="utf-8", errors="replace"), path)
    except FileNotFoundError:
        pass
    value = uuid.uuid4().hex[:12]
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{FILE_NAME}.tmp")
    tmp.write_text(value + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return value


def transactional_id(app_id: str, stage: str, worker: str) -> str:
    """``<APP_ID>-<stage>-<worker id>``: under the ``<APP_ID>-`` prefix the ACLs grant."""
    return f"{app_id}-{stage}-{worker}"


def stage_transactional_ids(app_id: str, stage: str) -> re.Pattern[str]:
    """What every worker's ``transactional_id`` of ``stage`` matches (``fullmatch``), and no
    other: not another stage's, nor another app's whose id starts with this one's."""
    return re.compile(re.escape(f"{app_id}-{stage}-") + _ID.pattern)
