"""``redrive``: list dead letters, and send chosen ones back to the topic they came from.

A dead letter keeps its record's key and bytes unchanged, so once the cause is fixed (a
release that no longer fails on it, say) the record can be read again as it was first sent.
By default the command lists the ``processing_error`` dead letters of the three input topics
and changes nothing; ``--apply`` sends them back, each to its original partition, with a
``dlq.redriven.from`` header naming the dead letter. Copies cut to fit the dead-letter topic
(``dlq.truncated``) are listed but never sent: they no longer hold the record.

Exit code 0 when done, 2 when it could not read or send (``app.commands._cli``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import click
import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.cli import option

from app.commands._cli import fail
from app.engine.committed import TopicNotFound, read_to_end
from app.settings import Settings

REDRIVEN_FROM = "dlq.redriven.from"
REASONS = (
    "malformed_json", "missing_field", "bad_type", "bad_id", "key_mismatch", "bad_timestamp",
    "unsupported_version", "oversized", "future_timestamp", "late", "invalid_transition",
    "processing_error",
)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic, with what its headers say."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str
    origin_topic: str | None
    origin_partition: int | None
    origin_offset: int | None
    truncated: bool

    @classmethod
    def of(cls, record) -> DeadLetter:  # noqa: ANN001 - an aiokafka ConsumerRecord
        headers = {name: value for name, value in record.headers or ()}

        def text(name: str) -> str | None:
            raw = headers.get(name)
            return raw.decode("utf-8", "replace") if raw is not None else None

        def number(name: str) -> int | None:
            raw = text(name)
            return int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None

        return cls(
            record.topic, record.partition, record.offset, record.key, record.value,
            text("dlq.reason") or "", text("dlq.detail") or "",
            text("dlq.origin.topic"), number("dlq.origin.partition"),
            number("dlq.origin.offset"), text("dlq.truncated") == "true",
        )

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def origin(self) -> str:
        return f"{self.origin_topic}[{self.origin_partition}]@{self.origin_offset}"

    def sendable(self, origins: set[str]) -> str | None:
        """Why it cannot go back (None when it can): cut short, or no known origin."""
        if self.truncated:
            return "truncated copy"
        if self.origin_topic not in origins or self.origin_partition is None:
            return "its origin is not an input topic"
        return None


def select(letters: Iterable[DeadLetter], reasons: set[str]) -> list[DeadLetter]:
    return [letter for letter in letters if letter.reason in reasons]


def describe(letter: DeadLetter, why_not: str | None) -> str:
    line = f"{letter.where} <- {letter.origin} {letter.reason}: {letter.detail[:200]}"
    return f"{line} [not sent: {why_not}]" if why_not else line


async def read_dead_letters(client_kwargs: dict, topic: str) -> list[DeadLetter]:
    """Every committed record of ``topic`` up to its end now; empty when it does not exist."""
    letters: list[DeadLetter] = []
    try:
        async for records in read_to_end(client_kwargs, topic):
            letters += [DeadLetter.of(r) for r in records]
    except TopicNotFound:
        return []
    return sorted(letters, key=lambda d: (d.partition, d.offset))


async def send_back(client_kwargs: dict, letters: Sequence[DeadLetter]) -> None:
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **client_kwargs)
    await producer.start()
    try:
        for letter in letters:
            await producer.send_and_wait(
                letter.origin_topic, letter.value, key=letter.key,
                partition=letter.origin_partition,
                headers=[(REDRIVEN_FROM, letter.where.encode())],
            )
    finally:
        await producer.stop()


def register(app: faust.App, settings: Settings) -> None:
    inputs = {
        settings.dlq_views_topic: settings.views_topic,
        settings.dlq_profiles_topic: settings.profiles_topic,
        settings.dlq_property_events_topic: settings.property_events_topic,
    }

    @app.command(
        option("--reason", "reasons", multiple=True, default=("processing_error",),
               type=click.Choice(REASONS), show_default=True,
               help="Dead letters of this reason (repeat for several)."),
        option("--dlq", "topics", multiple=True, type=click.Choice(sorted(inputs)),
               help="Only this dead-letter topic (repeat for several; default: all three)."),
        option("--apply", is_flag=True, default=False,
               help="Send them back to their topics; without it, only list them."),
    )
    async def redrive(
        self: faust.cli.AppCommand, reasons: tuple[str, ...], topics: tuple[str, ...], apply: bool
    ) -> None:
        """List dead letters (processing_error by default); --apply sends them back."""
        client = settings.kafka_client_kwargs()
        origins = set(inputs.values())
        chosen: list[DeadLetter] = []
        try:
            for topic in topics or tuple(inputs):
                letters = select(await read_dead_letters(client, topic), set(reasons))
                for letter in letters:
                    why_not = letter.sendable(origins)
                    print(describe(letter, why_not), flush=True)
                    if why_not is None:
                        chosen.append(letter)
            if apply and chosen:
                await send_back(client, chosen)
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        verb = "sent back" if apply else "can be sent back (--apply)"
        print(f"{len(chosen)} dead letters {verb}", file=sys.stderr, flush=True)
