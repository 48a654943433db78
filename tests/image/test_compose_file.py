"""docker-compose.yml says what tests/image/test_image.py runs: the worker services are the
image `make image` builds, bind all interfaces with a required API token, keep their state in
a volume at /data, advertise their own service name and port, and get a stop grace period the
image test measures the stop against; the topics service runs create-topics from the same
image. Only compose.RUN_OVERRIDES may differ between the file and the image test.

Without API_TOKEN the file's workers serve without a token (ALLOW_UNAUTHENTICATED_HTTP), their
ports published on the host's loopback only; with it, every API request needs the token."""

from __future__ import annotations

import pytest

from tests.support import compose
from tests.support.podman import IMAGE

WORKERS = ("worker-1", "worker-2")
TOKEN = "a-token-for-the-file-check"


@pytest.fixture(scope="module")
def file() -> dict:
    return compose.load()


@pytest.mark.parametrize("name", WORKERS)
def test_workers_run_the_built_image_as_the_image_test_runs_them(file, name) -> None:
    svc = compose.service(file, name, {"API_TOKEN": TOKEN})
    assert svc.build == "." and IMAGE.removeprefix("localhost/") == svc.image
    assert svc.command is None  # the image's CMD: the worker
    env = svc.environment
    assert env["WORKER_WEB_HOST"] == "0.0.0.0"
    assert env["API_TOKEN"] == TOKEN
    assert env["WORKER_DATA_DIR"] == "/data" and svc.volumes["/data"] == f"{name}-data"
    port = env["WORKER_WEB_PORT"]
    assert svc.ports == [f"127.0.0.1:{port}:{port}"]
    assert env["WORKER_CANONICAL_URL"] == f"http://{svc.hostname}:{port}"
    assert svc.hostname == name
    assert svc.stop_grace_s == 30
    assert svc.raw["restart"] == "unless-stopped"


def test_the_two_workers_differ_only_in_their_address_and_volume(file) -> None:
    one, two = (compose.service(file, name, {"API_TOKEN": TOKEN}) for name in WORKERS)
    differ = {k for k in one.environment.keys() | two.environment.keys()
              if one.environment.get(k) != two.environment.get(k)}
    assert differ == {"WORKER_WEB_PORT", "WORKER_CANONICAL_URL"}
    assert one.volumes.keys() == two.volumes.keys() == {"/data"}
    assert one.volumes["/data"] != two.volumes["/data"]


def test_topics_service_creates_the_topics_from_the_same_image_and_settings(file) -> None:
    topics = compose.service(file, "topics", {"API_TOKEN": TOKEN})
    worker = compose.service(file, "worker-1", {"API_TOKEN": TOKEN})
    assert topics.image == worker.image and topics.build == "."
    assert topics.command == ["faust", "-A", "app.main", "create-topics"]
    assert topics.raw["restart"] == "no"
    shared = {k: v for k, v in worker.environment.items()
              if k not in ("WORKER_WEB_PORT", "WORKER_CANONICAL_URL", "WORKER_DATA_DIR")}
    assert {k: topics.environment[k] for k in shared} == shared


@pytest.mark.parametrize("name", WORKERS)
def test_without_a_token_the_workers_serve_only_the_hosts_loopback(file, name) -> None:
    for env in ({}, {"API_TOKEN": ""}):
        svc = compose.service(file, name, env)
        assert svc.environment["API_TOKEN"] == ""  # empty: unset
        assert svc.environment["ALLOW_UNAUTHENTICATED_HTTP"] == "true"
        assert all(port.startswith("127.0.0.1:") for port in svc.ports), svc.ports
    svc = compose.service(file, name, {"ALLOW_UNAUTHENTICATED_HTTP": "false"})
    assert svc.environment["ALLOW_UNAUTHENTICATED_HTTP"] == "false"  # then the worker refuses


def test_the_image_test_may_replace_only_the_documented_settings(file) -> None:
    svc = compose.service(file, "worker-1", {"API_TOKEN": TOKEN})
    assert compose.run_environment(svc, {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}) == {
        **svc.environment, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}
    for setting in ("TOPIC_PARTITIONS", "WORKER_WEB_HOST", "WORKER_DATA_DIR"):
        with pytest.raises(compose.ComposeError, match=setting):
            compose.run_environment(svc, {setting: "x"})
