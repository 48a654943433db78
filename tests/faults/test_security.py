"""The product on a secured cluster: SASL_SSL with SCRAM-SHA-512 users, TLS from a CA the test
makes, a mutual-TLS listener, the StandardAuthorizer with allow.everyone.if.no.acl.found=false
(``tools/kafka/secure.sh``, a broker of this module's own).

1. The ACLs ``faust -A app.main acls --principal User:analytics`` prints, applied exactly as
   printed with Kafka's own kafka-acls tool, are enough: two workers as ``analytics`` (one
   through the SASL_SSL listener, one through the listener that requires a client certificate,
   with the client-certificate settings) create the topics, process a seeded workload and
   answer exactly as the oracle; a principal without those ACLs cannot read the views topic.
2. A wrong password, an unknown CA, a missing client certificate, a principal without ACLs and
   a missing group ACL each stop the worker within seconds with a message naming the cause;
   so does a missing transactional-id ACL, once the worker is given partitions.

Runs in ``make test`` (tests/faults, not soak): about 4-6 minutes, most of it JVM starts of the
broker and of Kafka's CLI tools (users, ACLs).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import TopicAuthorizationFailedError

from app.generator import Workload
from faults._harness import ARTIFACTS, log
from tests.support.checks import check_all, load_profiles
from tests.support.commands import run
from tests.support.oracle import HOUR, hour_of, oracle
from tests.support.secure_broker import SecureBroker
from tests.support.topics import produce
from tests.support.workers import Worker, isolated_env, wait_views_committed

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

SEED = 20261129
VIEWS = 1200
HOURS = 48
ANALYTICS_PASSWORD = "analytics-Secret-1"
NOBODY_PASSWORD = "nobody-Secret-1"
# A worker that cannot use the cluster stops within this many seconds of "[^AnalyticsWorker]: Starting"
# in its log, and its process exits within EXIT_WITHIN_S of being started (most of that is
# importing faust, slow on a loaded 2-core machine).
STOP_WITHIN_S = 15
EXIT_WITHIN_S = 120
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")


def seconds_to_error(log_text: str) -> float:
    """From the worker's "Starting..." to its "Error:" line, by the log's own timestamps (the
    worker service is ``app.main.AnalyticsWorker``, faust's Worker with the start checks)."""
    def stamp(marker: str) -> datetime:
        line = next((line for line in log_text.splitlines() if marker in line), None)
        assert line is not None, f"no {marker!r} line in the worker's log"
        return datetime.strptime(_STAMP.match(line).group(1), "%Y-%m-%d %H:%M:%S,%f")
    return (stamp("[^AnalyticsWorker]: Error:")
            - stamp("[^AnalyticsWorker]: Starting...")).total_seconds()


@pytest.fixture(scope="module")
def secured():
    """The secure broker, users ``analytics`` and ``nobody``, and one app's settings whose
    ACLs for ``analytics`` are those ``faust ... acls`` prints, applied as printed."""
    broker = SecureBroker(ARTIFACTS / "kafka-secure")
    shutil.rmtree(broker.home, ignore_errors=True)
    started = time.monotonic()
    broker.start()
    log(f"secure broker ready on {broker.bootstrap} in {time.monotonic() - started:.1f}s")
    try:
        broker.add_user("analytics", ANALYTICS_PASSWORD)
        broker.add_user("nobody", NOBODY_PASSWORD)
        env = isolated_env(broker.bootstrap, **broker.env("analytics", ANALYTICS_PASSWORD))
        printed = run(env, "acls", "--principal", "User:analytics",
                      "--command-config", str(broker.admin_properties), timeout=120)
        assert printed.returncode == 0, printed.stderr
        lines = [line for line in printed.stdout.splitlines() if line and not line.startswith("#")]
        assert lines and all(line.startswith("kafka-acls.sh ") for line in lines), printed.stdout
        started = time.monotonic()
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(broker.kafka_acls_line, lines))
        log(f"{len(lines)} kafka-acls lines applied in {time.monotonic() - started:.1f}s")
        yield broker, env, lines
    except BaseException:
        log(f"secure broker log:\n{broker.log_tail()}")
        raise
    finally:
        broker.stop()


async def test_the_printed_acls_are_enough_and_answers_are_exact(secured):
    broker, env, lines = secured
    admin = broker.client_kwargs("admin", broker.admin_password())
    # Two workers of one group: one on the SASL_SSL listener, one on the listener that also
    # requires a client certificate (every client of that worker must present it).
    plain = Worker(env).start()
    mtls = Worker({**env, **broker.env("analytics", ANALYTICS_PASSWORD, mtls=True)}).start()
    workers = [plain, mtls]
    passed = False
    try:
        await asyncio.gather(*(w.wait_ready(240) for w in workers))
        workload = Workload.every_case(SEED)
        profiles = await load_profiles(admin, plain.url, workload, env["PROFILES_TOPIC"])
        now = int(time.time() * 1000)
        start = hour_of(now) - (HOURS + 3) * HOUR + 17 * 60_000
        records = list(workload.views(VIEWS, start, HOURS * HOUR / VIEWS, now_ms=now))
        produced = await produce(admin, env["VIEWS_TOPIC"], records)
        await wait_views_committed(admin, env, workers, timeout=240)
        exp = oracle(produced, profiles, now)
        # each worker answers every key (routing to the other when not its own)
        urls = [worker.url for worker in workers]
        problems, _ = await check_all(admin, urls, env, exp, produced, SEED, exactly_once=True)
        assert not problems, problems[:20]
        assert all(w.alive for w in workers)
        for worker in workers:
            log_text = worker.log_path.read_text(errors="replace")
            assert "AuthorizationFailed" not in log_text, worker.log_path

        # Without those ACLs, a principal cannot read the views.
        nobody = broker.client_kwargs("nobody", NOBODY_PASSWORD)
        consumer = AIOKafkaConsumer(env["VIEWS_TOPIC"], group_id=f"{env['APP_ID']}-nobody",
                                    enable_auto_commit=False, **nobody)
        with pytest.raises(TopicAuthorizationFailedError):
            try:
                await asyncio.wait_for(consumer.start(), 60)
                await asyncio.wait_for(consumer.getmany(timeout_ms=2000), 30)
            finally:
                await consumer.stop()
        passed = True
    finally:
        for worker in workers:
            worker.stop(30)
            if passed and worker.data_dir is not None:
                shutil.rmtree(worker.data_dir, ignore_errors=True)


async def test_misconfigured_workers_exit_within_seconds_naming_the_cause(secured, tmp_path):
    broker, env, lines = secured
    # The topics exist (as after a create-topics by an administrator), so that what is checked
    # is each principal's access to them.
    admin_env = {**env, **broker.env("admin", broker.admin_password())}
    created = run(admin_env, "create-topics", timeout=120)
    assert created.returncode == 0, created.stderr[-2000:]
    # analytics loses the ACL on its consumer group (the line the acls command printed for it).
    group_line = next(line for line in lines if "--group" in line)
    broker.kafka_acls_line(group_line.replace(" --add ", " --remove --force ", 1))

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=some other CA", "-keyout", str(tmp_path / "other.key"),
                    "-out", str(tmp_path / "other-ca.pem")], check=True, capture_output=True)
    views = env["VIEWS_TOPIC"]
    cases = {
        "wrong password": (
            broker.env("analytics", "not-the-password"),
            ["SASL authentication of user 'analytics' with SCRAM-SHA-512 failed",
             "wrong KAFKA_SASL_PASSWORD"],
        ),
        "unknown CA": (
            broker.env("analytics", ANALYTICS_PASSWORD, cafile=tmp_path / "other-ca.pem"),
            ["the broker's certificate is not trusted", "KAFKA_SSL_CAFILE"],
        ),
        "no client certificate": (
            {**broker.env("analytics", ANALYTICS_PASSWORD),
             "KAFKA_BOOTSTRAP_SERVERS": broker.mtls_bootstrap},
            ["client certificate", "KAFKA_SSL_CERTFILE"],
        ),
        "principal without ACLs": (
            broker.env("nobody", NOBODY_PASSWORD),
            ["User:nobody lacks ACLs a worker needs", f"on topic {views};",
             "faust -A app.main acls --principal User:nobody"],
        ),
        "missing group ACL": (
            broker.env("analytics", ANALYTICS_PASSWORD),
            [f"User:analytics lacks ACLs a worker needs on Kafka at {broker.bootstrap}: "
             f"Describe, Read on group {env['APP_ID']}."],
        ),
    }
    workers = {name: Worker({**env, **overrides}).start() for name, (overrides, _) in cases.items()}
    started = time.monotonic()
    try:
        while any(w.alive for w in workers.values()) and time.monotonic() - started < EXIT_WITHIN_S:
            await asyncio.sleep(0.5)
        took = time.monotonic() - started
        still = [name for name, w in workers.items() if w.alive]
        assert not still, f"still running after {took:.0f}s: {still}"
        log(f"all {len(workers)} misconfigured workers exited within {took:.1f}s")
        for name, (_, expected) in cases.items():
            worker = workers[name]
            assert worker.proc.returncode != 0, name
            text = worker.log_path.read_text(errors="replace")
            for fragment in expected:
                assert fragment in text, f"{name}: {fragment!r} not in {worker.log_path}"
            stopped = seconds_to_error(text)
            log(f"{name}: stopped {stopped:.1f}s after starting")
            assert stopped < STOP_WITHIN_S, (name, stopped)
            password = cases[name][0].get("KAFKA_SASL_PASSWORD", "")
            assert f"password={password}" not in text and f"'{password}'" not in text, name
    finally:
        for worker in workers.values():
            worker.stop(10)
            if worker.data_dir is not None:
                shutil.rmtree(worker.data_dir, ignore_errors=True)


async def test_a_missing_transactional_id_acl_stops_the_worker_naming_it(secured):
    """The one privilege the start-up check cannot see: the first transactional producer,
    started when the worker is given its partitions, is refused, and the worker stops."""
    broker, env, lines = secured
    admin_env = {**env, **broker.env("admin", broker.admin_password())}
    created = run(admin_env, "create-topics", timeout=120)
    assert created.returncode == 0, created.stderr[-2000:]
    group_line = next(line for line in lines if "--group" in line)
    broker.kafka_acls_line(group_line)  # given back, if an earlier test took it
    tx_line = next(line for line in lines if "--transactional-id" in line)
    broker.kafka_acls_line(tx_line.replace(" --add ", " --remove --force ", 1))
    worker = Worker(env).start()
    started = time.monotonic()
    try:
        while worker.alive and time.monotonic() - started < EXIT_WITHIN_S + 60:
            await asyncio.sleep(0.5)
        assert not worker.alive, f"still running after {time.monotonic() - started:.0f}s"
        assert worker.proc.returncode != 0
        text = worker.log_path.read_text(errors="replace")
        assert "refused for good (TransactionalIdAuthorizationFailed(" in text, worker.log_path
        assert "a missing ACL (see `faust -A app.main acls`)" in text, worker.log_path
        log(f"missing transactional-id ACL: exited {time.monotonic() - started:.1f}s after start")
    finally:
        worker.stop(10)
        broker.kafka_acls_line(tx_line)
        if worker.data_dir is not None:
            shutil.rmtree(worker.data_dir, ignore_errors=True)
