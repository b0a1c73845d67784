"""The Ray cluster a parallel render runs on: imported so that a local cluster listens on
127.0.0.1 only, joined or started for the duration of a render, each task's share of it, and the
wait for a render's tasks (their frames counted from the work folder as they land, their errors
as one line). ``render.parallel``'s segments and ``render.paint``'s passes both run through it."""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from videostyle import interrupt
from videostyle.errors import ConfigError, InputError, OutputError, RenderInterrupted, setting
from videostyle.report import FrameDone, Reporter

INSTALL = 'pip install -e ".[ray]"'


# Ray reads this once, when ray_constants is imported: "0" makes the node address 127.0.0.1, and
# every process of a cluster it then starts (GCS, raylet, workers, agents) listens on loopback
# only. Unset, on Linux they listen on all interfaces: an unauthenticated cluster that anyone on
# the network could run code on.
LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(local: bool = True) -> Any:
    """Ray, imported so that a ``local`` cluster it starts listens on 127.0.0.1 whatever the
    environment says (a remote cluster, joined with --ray-address, is left as it is)."""
    if local:
        os.environ[LOOPBACK_ENV] = "0"  # before the first import; inherited by Ray's processes
    try:
        ray = importlib.import_module("ray")
    except ImportError:
        raise ConfigError(f"{setting('workers')} > 1 renders on Ray, which is not installed; install the extra with: "
                          f"{INSTALL}") \
            from None
    if local:
        # Imported earlier by someone else (a notebook, an embedding program): the constant was
        # read then; the node address is looked up through it when the cluster starts.
        constants = importlib.import_module("ray._private.ray_constants")
        constants.ENABLE_RAY_CLUSTER = False
    return ray


def remote_task(ray: Any, body: Any, workers: int, threads: int) -> tuple[Any, int]:
    """``body`` as a Ray task, one of ``workers``, retried if its worker dies, and its torch
    threads: a GPU each where the cluster has GPUs, else an even CPU share (torch threads match
    it: no oversubscription)."""
    res = ray.cluster_resources()
    if int(res.get("GPU", 0)):
        opts: dict[str, Any] = {"num_gpus": 1, "num_cpus": 1}
    else:
        cpus = max(1, int(res.get("CPU", 1)) // max(workers, 1))
        opts, threads = {"num_cpus": cpus}, threads or cpus
    return ray.remote(max_retries=3, retry_exceptions=False)(body).options(**opts), threads


def wait_tasks(ray: Any, refs: list[Any], done: Any, rep: Reporter, total: int, kept: int, inp: Path,
               work: Path) -> None:
    """Wait for ``refs``, reporting the frames ``done()`` counts as they land; a task's error
    becomes one line, Ctrl-C or SIGTERM an interrupted render that resumes."""
    try:
        seen = kept
        for _ in range(seen):
            rep.frame(FrameDone(0, total, 0, 0.0, float("nan"), resumed=True))
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, timeout=0.5)
            now = done()
            for _ in range(now - seen):
                rep.frame(FrameDone(0, total, 0, 0.0, float("nan")))
            seen = max(seen, now)
        ray.get(refs)
    except KeyboardInterrupt as exc:
        raise RenderInterrupted(f"interrupted{interrupt.by(exc)}; finished frames are kept in {work}: run the "
                                "same command again to resume", exit_code=interrupt.exit_code(exc)) from None
    except Exception as exc:  # noqa: BLE001 - Ray wraps the task's own error
        cause = getattr(exc, "cause", None) or exc
        if isinstance(cause, (ConfigError, InputError, OutputError)):
            raise cause from None
        raise OutputError(f"parallel render of {inp} failed: {type(cause).__name__}: {cause}") from None


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray, initialised for the duration: joins ``address`` or starts a local loopback cluster."""
    ray = import_ray(local=address is None)
    started = False
    ours = interrupt.installed()
    if not ray.is_initialized():
        if address is None:
            # The embedded local cluster serves this machine only: loopback (see import_ray).
            ray.init(num_cpus=max(os.cpu_count() or 1, 1), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        else:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"{setting('ray_address', address)}: cannot join the Ray cluster ({exc})") from None
        started = True
        if ours:
            interrupt.install()  # ray.init replaces the SIGTERM handler with its own sys.exit
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()
