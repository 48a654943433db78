"""Everything under tests/integration needs the real broker.

The autouse fixture makes every test here skip (laptop) or fail (CI set) up
front when no broker answers, even tests that do not ask for kafka_bootstrap.
The fixtures themselves live in tests/conftest.py so tests/faults can share them.
"""

import pytest


@pytest.fixture(autouse=True)
def _require_kafka(kafka_bootstrap):
    return kafka_bootstrap
