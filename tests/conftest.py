"""Shared fixtures: a real Kafka broker and helpers to use it.

The broker is whatever KAFKA_BOOTSTRAP_SERVERS points at (default the local one
from `make kafka-up`, 127.0.0.1:9092). Without a reachable broker, tests that need
it are skipped on a laptop and FAIL when CI or REQUIRE_BROKER (set by `make test`) is set, so a
missing broker can never turn a CI run green.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import HealthCheck, settings

# Property tests check outcomes, never speed (the benchmark does that): no per-example deadline
# and no "too slow" health check, which fail on a busy 2-core CI machine for no fault of the code.
settings.register_profile("outcomes-only", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("outcomes-only")

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
BROKER_CHECK_TIMEOUT_S = 10.0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (a CI timeout, `kill`) ends the run like Ctrl-C: fixtures still tear down, so the
    # worker processes and brokers the tests started (in sessions of their own) are stopped.
    signal.signal(signal.SIGTERM, _interrupt)


def _in_ci() -> bool:
    """CI, or `make test` (which starts a broker itself): a missing broker is a failure there."""
    return any(
        os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")
        for name in ("CI", "REQUIRE_BROKER")
    )


async def _broker_problem(bootstrap: str) -> str | None:
    """None if the broker answers a metadata request, else what went wrong."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await asyncio.wait_for(admin.start(), BROKER_CHECK_TIMEOUT_S)
        await asyncio.wait_for(admin.list_topics(), BROKER_CHECK_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable broker"
        return f"{type(exc).__name__}: {exc}"
    finally:
        await admin.close()
    return None


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_bootstrap() -> str:
    """Bootstrap servers of a broker that really answers requests."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP
    problem = await _broker_problem(bootstrap)
    if problem is not None:
        message = f"no Kafka broker answering at {bootstrap} ({problem})"
        if _in_ci():
            pytest.fail(f"{message}; CI is set, so this is an error, not a skip", pytrace=False)
        pytest.skip(f"{message}; start one with `make kafka-up`")
    return bootstrap


@pytest.fixture
def unique_name(request):
    """unique_name("views") -> "views-test_foo-3f9c1a2b": fresh topic/group names per test."""
    test = request.node.name.split("[")[0][:40]

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def admin(kafka_bootstrap):
    """A started AIOKafkaAdminClient for the test broker (shared by the session)."""
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap, request_timeout_ms=30000)
    await client.start()
    yield client
    await client.close()


@pytest.fixture
def create_topic(admin):
    """await create_topic(name, partitions=1, config={...}); raises if the broker refuses."""

    async def create(name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=config or {})]
        )
        for err in response.to_object()["topic_errors"]:
            if err["error_code"] != 0:
                raise RuntimeError(
                    f"creating topic {err['topic']!r} failed: "
                    f"error {err['error_code']} {err['error_message']}"
                )
        return name

    return create
