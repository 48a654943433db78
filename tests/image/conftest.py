"""The container image tests: podman must be there (`make system-deps` installs it) and a
broker must answer (tests/conftest.py); the image is built once per session, as `make image`
builds it."""

from __future__ import annotations

import pytest

from tests.support.podman import IMAGE, LOG_DIR, build_image, require_podman


@pytest.fixture(scope="session")
def image() -> tuple[str, float]:
    """(the image's name, seconds its build took: little when nothing changed)."""
    require_podman()
    return IMAGE, build_image(LOG_DIR / "image-build.log")
