"""``TransactionalWriter.stop``: discarding a broken producer never ends the worker."""

from __future__ import annotations

import pytest

from app.state.writer import TransactionalWriter


class BrokenProducer:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        # seen with the broker SIGKILLed: aiokafka's metadata task wrote to a closed transport
        RuntimeError("unable to perform operation on <TCPTransport closed=True>; the handler is closed"),
        ConnectionResetError("connection reset"),
    ],
)
async def test_stopping_a_broken_producer_does_not_raise(error: BaseException) -> None:
    writer = TransactionalWriter("views-0", {})
    producer = BrokenProducer(error)
    writer._producer = producer  # noqa: SLF001
    await writer.stop()
    assert producer.stopped and writer._producer is None  # noqa: SLF001
