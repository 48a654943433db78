"""The worker image as users run it: built by `make image` (tools/image/build.sh), the compose
file's topics and two worker services started from it with the file's settings, on the host
network next to the real broker, with an API token, a data volume each and the image's own
health check, as the image's non-root user. They become ready and healthy, split the
partitions, answer a query routed from one to the other exactly (the oracle's answer), publish
exactly the oracle's insights, and stop on SIGTERM within the compose file's grace period with
exit code 0 and nothing left running. Run bare (`docker run` with a broker address only), the
image binds all interfaces and refuses to start without API_TOKEN, unless
ALLOW_UNAUTHENTICATED_HTTP=true.

No compose tool can run docker-compose.yml here (its broker image is in a registry these
machines cannot reach): tests/support/compose.py reads the file's services and
test_compose_file.py checks that what runs here is what the file says.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from app.web.routing import partition_of
from app.windows import HOUR_MS, hour_start, iso_ms
from tests.support import compose
from tests.support.checks import check_insights
from tests.support.podman import ContainerWorker, podman, processes_of
from tests.support.workers import REPO, free_port
from tests.web._cluster import Cluster

pytestmark = [pytest.mark.integration, pytest.mark.image, pytest.mark.timeout(1200)]

WORKERS = ("worker-1", "worker-2")
MEASURED = REPO / "tests" / "artifacts" / "image.json"
APP_UID = "10001"


def overrides(bootstrap: str, tag: str, token: str) -> dict[str, str]:
    """The settings the test replaces (compose.RUN_OVERRIDES): the host's broker, names of its
    own, its token, and quick commits so that the answers are there in seconds."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "API_TOKEN": token,
        "APP_ID": f"pa-image-{tag}",
        "VIEWS_TOPIC": f"views-{tag}",
        "PROFILES_TOPIC": f"profiles-{tag}",
        "PROPERTY_EVENTS_TOPIC": f"property-events-{tag}",
        "INSIGHTS_TOPIC": f"insights-{tag}",
        "PARTIALS_PUBLISH_SECONDS": "0.2",
        "COMMIT_INTERVAL_SECONDS": "0.5",
    }


def container(svc: compose.Service, env: dict[str, str], tag: str) -> ContainerWorker:
    """The compose service ``svc`` as a container on the host network, with the test's
    overrides; a worker gets a free port and advertises it on 127.0.0.1."""
    port = free_port()
    if "WORKER_WEB_PORT" in svc.environment:
        env = {**env, "WORKER_WEB_PORT": str(port),
               "WORKER_CANONICAL_URL": f"http://127.0.0.1:{port}"}
    return ContainerWorker(
        compose.run_environment(svc, env), port=port, name=f"pa-{svc.name}-{tag}",
        volume=f"pa-{svc.name}-{tag}-data" if "/data" in svc.volumes else "",
        command=svc.command,
    )


async def views_partitions(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return len(described["partitions"])
    finally:
        await admin.close()


async def settled(workers: list[ContainerWorker], partitions: int,
                  timeout: float = 120) -> list[set[int]]:
    """Every worker ready, the views partitions split between them."""
    deadline = time.monotonic() + timeout
    owned: list[set[int]] = []
    while time.monotonic() < deadline:
        answers = [await w.get("/ready") for w in workers]
        if all(status == 200 for status, _ in answers):
            owned = [set(body["partitions"]["views"]) for _, body in answers]
            every = set().union(*owned)
            if all(owned) and sum(map(len, owned)) == partitions == len(every):
                return owned
        await asyncio.sleep(0.5)
    raise AssertionError(f"workers never split the {partitions} partitions: {owned}")


def property_in(owned: set[int], partitions: int) -> str:
    """A property of the seeded workload (prop-0..79) that lives in ``owned``."""
    return next(p for p in (f"prop-{i}" for i in range(80)) if partition_of(p, partitions) in owned)


def volume_files(volume: str) -> dict[str, int]:
    """Files in a named volume, by path, with their owner's uid."""
    mount = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
    return {str(p.relative_to(mount)): p.stat().st_uid for p in mount.rglob("*")}


async def test_image_runs_the_compose_services_as_users_would(kafka_bootstrap, image) -> None:
    name, build_s = image
    config = json.loads(podman("image", "inspect", "--format", "json", name).stdout)[0]
    assert config["Config"]["User"] == "app"
    assert "/data" in config["Config"]["Volumes"]
    assert config["Config"]["StopSignal"] == "SIGTERM"
    assert "/ready" in " ".join(config["Healthcheck"]["Test"]), config.get("Healthcheck")

    file = compose.load()
    tag, token = uuid.uuid4().hex[:8], secrets.token_urlsafe(24)
    env = overrides(kafka_bootstrap, tag, token)
    topics = container(compose.service(file, "topics", {"API_TOKEN": token}), env, tag)
    services = [compose.service(file, w, {"API_TOKEN": token}) for w in WORKERS]
    workers = [container(svc, env, tag) for svc in services]
    grace = services[0].stop_grace_s
    measured: dict[str, object] = {"image": name, "build_s": round(build_s, 1),
                                   "size_bytes": config["Size"]}
    try:
        # The topics service: a one-shot create-topics, as compose runs it before the workers.
        topics.start()
        assert topics.proc.wait(180) == 0, f"create-topics failed; see {topics.log_path}"
        partitions = int(services[0].environment["TOPIC_PARTITIONS"])
        assert await views_partitions(kafka_bootstrap, env["VIEWS_TOPIC"]) == partitions

        started = time.monotonic()
        workers[0].start()
        await workers[0].wait_ready(180)
        measured["start_to_ready_s"] = round(time.monotonic() - started, 1)
        workers[1].start()
        await workers[1].wait_ready(180)
        owned = await settled(workers, partitions)

        for worker in workers:
            uid = podman("exec", worker.name, "id", "-u").stdout.strip()
            assert uid == APP_UID, f"{worker.name} runs as uid {uid}"
            health = podman("healthcheck", "run", worker.name, check=False)
            assert health.returncode == 0, f"{worker.name}: {health.stdout}{health.stderr}"
            pid1 = podman("exec", worker.name, "cat", "/proc/1/cmdline").stdout.split("\0")
            # faust is PID 1: `podman stop`'s SIGTERM goes to it, not to a shell
            assert pid1[1:4] == ["/opt/venv/bin/faust", "-A", "app.main"], pid1
            status, body = await worker.get("/api/users/user-1")
            assert status == 401, (status, body)  # the token is required

        cluster = Cluster(kafka_bootstrap, {**env, **workers[0].env}, workers)
        exp = await cluster.feed()
        auth = {"Authorization": f"Bearer {token}"}
        # Each worker asked for a property the other one holds: the query is routed there.
        for asked, other in ((workers[0], owned[1]), (workers[1], owned[0])):
            prop = property_in(other, partitions)
            busy = sorted(h for (p, h) in exp.hourly if p == prop)
            assert busy, f"the workload has no views of {prop}"
            for hour in (busy[0], busy[-1], hour_start(cluster.now_ms)):
                path = f"/api/properties/{prop}/views?hour={iso_ms(hour)}"
                status, body = await asked.get(path, headers=auth)
                assert (status, body) == (200, exp.hour_answer(prop, hour)), (asked.name, path)
            start = hour_start(cluster.now_ms) - 23 * HOUR_MS
            path = (f"/api/properties/{prop}/views/history?from={iso_ms(start)}"
                    f"&to={iso_ms(start + 24 * HOUR_MS)}")
            status, body = await asked.get(path, headers=auth)
            assert status == 200 and body["windows"] == [
                exp.hour_answer(prop, start + k * HOUR_MS) for k in range(24)], (asked.name, path)

        problems, published = await check_insights(kafka_bootstrap, env["INSIGHTS_TOPIC"], exp,
                                                   exactly_once=True)
        assert not problems, problems[:20]
        assert published > 0 and published == len(exp.insights())
        measured["insights"] = published

        for worker in workers:  # the non-root user wrote the worker's state to its volume
            files = volume_files(worker.volume)
            assert any(p.endswith(".sst") or "CURRENT" in p for p in files), sorted(files)[:20]
            assert set(files.values()) == {int(APP_UID)}, files

        # `docker compose down`: SIGTERM to both at once, SIGKILL only after the grace period.
        codes = await asyncio.gather(*(asyncio.to_thread(w.stop, grace) for w in workers))
        for worker, code in zip(workers, codes):
            state = worker.state()
            assert code == 0 and state["Status"] == "exited", (worker.name, state)
            assert not state["OOMKilled"], (worker.name, state)
            assert worker.stop_seconds < grace, (worker.name, worker.stop_seconds)
            container_id = podman("inspect", "--format", "{{.Id}}", worker.name).stdout.strip()
            assert processes_of(container_id) == []
        measured["stop_s"] = [round(w.stop_seconds, 1) for w in workers]
        MEASURED.parent.mkdir(parents=True, exist_ok=True)
        MEASURED.write_text(json.dumps(measured, indent=1))
        print("image measured:", json.dumps(measured))
    finally:
        for c in (topics, *workers):
            c.remove()


async def test_image_refuses_to_start_on_all_interfaces_without_a_token(kafka_bootstrap,
                                                                         image) -> None:
    name, _ = image
    tag = uuid.uuid4().hex[:8]
    bare = {k: v for k, v in overrides(kafka_bootstrap, tag, "unused").items() if k != "API_TOKEN"}
    refused = ContainerWorker(bare, name=f"pa-bare-{tag}", image=name)
    allowed = ContainerWorker(bare, name=f"pa-bare-optin-{tag}", image=name,
                              extra_env={"ALLOW_UNAUTHENTICATED_HTTP": "true"})
    try:
        started = time.monotonic()
        refused.start()
        code = refused.proc.wait(60)
        log = refused.log_path.read_text(errors="replace")
        assert code == 2 and refused.state()["ExitCode"] == 2, log[-2000:]
        refusal = "WORKER_WEB_HOST=0.0.0.0 is not a loopback address and API_TOKEN is not set"
        assert refusal in log, log[-2000:]
        assert time.monotonic() - started < 30
        # The explicit opt-in starts it, and it answers without a token.
        allowed.start()
        await allowed.wait_ready(120)
        status, body = await allowed.get("/api/users/nobody")
        assert status == 404, (status, body)
        assert allowed.stop(30) == 0
    finally:
        refused.remove()
        allowed.remove()
