"""``replay --from TIME --shadow NAME [--set NAME=VALUE ...]``: the pipeline again, from a time,
into a shadow; then one worker of it, with progress, until Ctrl-C.

The first ``replay`` of a shadow starts it (``app.replay.start``); later ones, with the same
arguments or with ``--shadow`` alone, add workers to it, like more workers of the live app:
each needs its own ``--web-port`` and data dir. ``--print-env`` starts the shadow if need be
and prints its workers' environment instead, for running them under a supervisor.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import click
import faust
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.cli import option

from app.commands._cli import fail, parse_time
from app.engine.clients import committed_reader, stop_consumer
from app.replay.manifest import BadManifest, Manifest, read_manifest
from app.replay.progress import group_positions, measure, progress_line
from app.replay.shadow import Shadow, ShadowError, check_name, describe_overrides, parse_overrides
from app.replay.start import ReplayError, start_shadow
from app.replay.worker import default_data_dir, env_lines, spawn, worker_env
from app.settings import Settings
from app.windows import iso_ms

log = logging.getLogger(__name__)

PORT_OFFSET = 1000  # default port of a shadow worker: the live port + 1000
FOLLOW_REPORT_EVERY = 12  # once caught up, one line per this many progress intervals


def register(app: faust.App, settings: Settings) -> None:
    @app.command(
        option("--shadow", "name", required=True, metavar="NAME",
               help="Name of the shadow: letters, digits, '-', '_'."),
        option("--from", "from_ms", default=None, metavar="TIME", callback=parse_time,
               help="Replay from this ISO-8601 time (with an offset or Z). Needed to start a "
                    "shadow; a running shadow is joined without it."),
        option("--set", "sets", multiple=True, metavar="NAME=VALUE",
               help="A setting of the shadow that differs from the live one, e.g. "
                    "SPIKE_RATIO=2.5 (repeatable)."),
        option("--web-port", type=click.IntRange(1, 65535), default=None,
               help=f"HTTP port of this shadow worker [default: WORKER_WEB_PORT + {PORT_OFFSET}]"),
        option("--data-dir", type=click.Path(path_type=Path), default=None,
               help="Data dir of this shadow worker [default: ./data/shadow-<NAME>/worker-<port>]"),
        option("--canonical-url", default=None,
               help="URL the shadow's other workers reach this one at."),
        option("--print-env", is_flag=True, default=False,
               help="Start the shadow if need be, print its workers' environment, exit."),
        option("--progress-seconds", type=click.FloatRange(min=0.5), default=5.0,
               help="Seconds between two progress lines."),
        option("--worker-loglevel", default="info",
               type=click.Choice(["debug", "info", "warn", "error", "crit"]),
               help="Log level of the shadow worker."),
    )
    async def replay(
        self: faust.cli.AppCommand,
        name: str,
        from_ms: int | None,
        sets: tuple[str, ...],
        web_port: int | None,
        data_dir: Path | None,
        canonical_url: str | None,
        print_env: bool,
        progress_seconds: float,
        worker_loglevel: str,
    ) -> None:
        """Replay the input from a time into a shadow (same pipeline, its own app id and
        outputs), then run one worker of it with progress until stopped."""
        port = web_port or settings.worker_web_port + PORT_OFFSET
        if port > 65535:
            fail("--web-port: the default (WORKER_WEB_PORT + 1000) is above 65535; give one")
        folder = data_dir or default_data_dir(name, port)
        try:
            check_name(name)
            overrides = parse_overrides(sets)
            # The values of --set checked before the cluster is asked anything.
            Shadow(name, settings, overrides).settings(worker_web_port=port, worker_data_dir=folder)
            if from_ms is not None and from_ms > time.time() * 1000:
                raise ShadowError(f"--from {iso_ms(from_ms)} is in the future")
            manifest = await read_manifest(
                settings.kafka_client_kwargs(), Shadow(name, settings).manifest_topic
            )
            shadow = _resolve(name, settings, from_ms, overrides, sets, manifest)
            shadow_settings = shadow.settings(worker_web_port=port, worker_data_dir=folder)
            if manifest is None:
                assert from_ms is not None
                print(
                    f"replay {name}: starting shadow {shadow.app_id} from {iso_ms(from_ms)} "
                    f"with {describe_overrides(overrides)}",
                    flush=True,
                )
                manifest = await start_shadow(
                    shadow, shadow_settings, from_ms, int(time.time() * 1000),
                    say=lambda line: print(line, flush=True),
                )
                print(
                    f"replay {name}: started at {_offsets(manifest.start_offsets)} "
                    f"({_total(manifest.start_offsets, manifest.end_offsets):,} offsets to the "
                    "live end)",
                    flush=True,
                )
            else:
                print(
                    f"replay {name}: joining shadow {shadow.app_id} (from "
                    f"{iso_ms(manifest.from_ms)}, {describe_overrides(manifest.overrides)})",
                    flush=True,
                )
        except (ShadowError, ReplayError, BadManifest) as exc:
            fail(str(exc))
        except KafkaError as exc:
            fail(f"Kafka at {settings.kafka_bootstrap_servers}: {exc!r}")
        if print_env:
            for line in env_lines(shadow.env()):
                print(line)
            return
        env = worker_env(os.environ, shadow.env(), port, folder, canonical_url)
        worker = spawn(env, worker_loglevel)
        _stop_with_this_process(worker)
        print(
            f"replay {name}: worker pid {worker.pid} on port {port}, data dir {folder}",
            flush=True,
        )
        try:
            await _follow(name, shadow_settings, manifest, worker, progress_seconds)
        finally:
            _stop(worker)
            print(f"replay {name}: the worker exited with code {worker.returncode}", flush=True)
        code = worker.returncode
        if code:
            raise SystemExit(code if code > 0 else 1)


def _resolve(
    name: str,
    settings: Settings,
    from_ms: int | None,
    overrides: dict[str, str],
    sets: tuple[str, ...],
    manifest: Manifest | None,
) -> Shadow:
    """The shadow to start (no manifest yet) or join (the manifest's settings)."""
    if manifest is None:
        if from_ms is None:
            raise ShadowError(f"there is no shadow {name!r} yet: start it with --from TIME")
        return Shadow(name, settings, overrides)
    if manifest.live_app_id != settings.app_id:
        raise ShadowError(
            f"shadow {name!r} replays the app {manifest.live_app_id!r}, not {settings.app_id!r}"
        )
    if manifest.promoted_ms is not None:
        raise ShadowError(
            f"shadow {name!r} was promoted at {iso_ms(manifest.promoted_ms)}: run its workers "
            f"as the live app (APP_ID={manifest.app_id}), see docs/replay.md"
        )
    if from_ms is not None and from_ms != manifest.from_ms:
        raise ShadowError(
            f"shadow {name!r} replays from {iso_ms(manifest.from_ms)}, not {iso_ms(from_ms)}: "
            "join it with --shadow alone, or pick another name"
        )
    if sets and overrides != manifest.overrides:
        raise ShadowError(
            f"shadow {name!r} runs with {describe_overrides(manifest.overrides)}, not "
            f"{describe_overrides(overrides)}: join it with --shadow alone, or pick another name"
        )
    return Shadow(name, settings, manifest.overrides)


async def _follow(
    name: str,
    settings: Settings,
    manifest: Manifest,
    worker: subprocess.Popen,
    interval: float,
) -> None:
    """Print progress until the worker exits (or the command is stopped)."""
    kwargs = settings.kafka_client_kwargs()
    admin = AIOKafkaAdminClient(**kwargs)
    ends_reader = committed_reader(kwargs)
    await admin.start()
    await ends_reader.start()
    started = time.monotonic()
    previous: tuple[float, int] | None = None
    reached = False
    ticks = 0
    try:
        while worker.poll() is None:
            await asyncio.sleep(interval)
            if worker.poll() is not None:
                break
            ticks += 1
            try:
                positions = await group_positions(admin, manifest.app_id, manifest.views_topic)
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                print(f"replay {name}: progress unknown ({exc!r})", flush=True)
                continue
            now = time.monotonic()
            progress = measure(manifest.start_offsets, manifest.end_offsets, positions)
            if not reached:
                rate = None
                if previous is not None and now > previous[0]:
                    rate = (progress.done - previous[1]) / (now - previous[0])
                previous = (now, progress.done)
                print(progress_line(name, progress, now - started, rate), flush=True)
                if progress.reached:
                    reached = True
                    print(
                        f"replay {name}: reached the live end of the start after "
                        f"{now - started:.1f}s; following {manifest.views_topic}",
                        flush=True,
                    )
            elif ticks % FOLLOW_REPORT_EVERY == 0:
                tps = [TopicPartition(manifest.views_topic, p) for p in manifest.start_offsets]
                try:
                    ends = await ends_reader.end_offsets(tps)
                except (KafkaError, OSError, asyncio.TimeoutError):
                    continue
                lag = sum(
                    max(end - positions.get(tp.partition, manifest.start_offsets[tp.partition]), 0)
                    for tp, end in ends.items()
                )
                print(f"replay {name}: following, {lag:,} offsets behind the end", flush=True)
    finally:
        await stop_consumer(ends_reader)
        await admin.close()


def _stop_with_this_process(worker: subprocess.Popen) -> None:
    """The worker runs in a session of its own (a Ctrl-C reaches only this command, which
    then stops it once): nothing stops it but this process. faust turns SIGINT and SIGTERM
    into a shutdown that runs the command's ``finally``; SIGHUP (a closed terminal) is made
    to do the same, and an ``atexit`` hook stops the worker if the command ends any other
    way but SIGKILL."""
    atexit.register(_stop, worker, 30.0)
    try:
        asyncio.get_running_loop().add_signal_handler(
            signal.SIGHUP, os.kill, os.getpid(), signal.SIGTERM
        )
    except (RuntimeError, NotImplementedError, ValueError):
        pass  # no loop of ours, or not the main thread: atexit still stops the worker


def _stop(worker: subprocess.Popen, timeout: float = 60.0) -> None:
    """SIGTERM (faust commits and leaves the group), SIGKILL if it hangs."""
    if worker.poll() is not None:
        return
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _offsets(offsets: dict[int, int]) -> str:
    return ", ".join(f"[{p}]@{o}" for p, o in sorted(offsets.items()))


def _total(starts: dict[int, int], ends: dict[int, int]) -> int:
    return sum(max(ends.get(p, o) - o, 0) for p, o in starts.items())
