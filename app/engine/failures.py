"""Failures that are not a record's fault.

A stage that raises while it processes a record dead-letters that record with reason
``processing_error`` and goes on (``app.engine.runner``): the record is the likely cause, and
one dead letter costs less than an outage. Some failures say nothing about the record: the
worker's own storage failed, or a partition it reads was closed under it. Dead-lettering
every record that meets them would empty the stream into the dead-letter topic, so they stop
the worker instead, as any failure did before (Kafka Streams likewise gives its processing
exception handler only the exceptions of processors, never those of its state stores).
"""

from __future__ import annotations


class EngineFailure(Exception):
    """The worker cannot process anything right now; the record is not to blame."""


class StoreFailure(EngineFailure):
    """Reading a partition's RocksDB store failed (I/O error, corruption, closed store)."""


class PartitionUnavailable(EngineFailure):
    """A partition or table a stage reads is not open on this worker (closed under a batch)."""


def blames_record(exc: BaseException) -> bool:
    """Whether a failure while processing one record may be blamed on that record.

    ``MemoryError`` is the worker's, not the record's: retrying elsewhere may pass.
    """
    return isinstance(exc, Exception) and not isinstance(exc, (EngineFailure, MemoryError))
