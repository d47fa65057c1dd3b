"""The `ray` backend of the run store: one Ray task per run, on a local Ray instance or a cluster.

`compute.backend: ray` in params.yaml sends a stage's runs here
(`pipeline.runs.store.run_all`). Every run that is not finished in the store
yet is submitted at once as a task asking for `compute.threads` CPUs and
`compute.gpus_per_run` GPUs (fractions share a GPU); results are gathered as
they finish. A task runs `train_run` under the run's lock in the store
(`store/<run id>/.lock`), so the store must be a filesystem every node mounts
(NFS or another shared filesystem). A task whose worker or node dies is
retried by Ray up to `compute.max_retries` times and resumes from the run's
last checkpoint.

`compute.ray_address`: empty starts a local Ray instance sized to this
machine (and stops it afterwards); `auto` joins the cluster this node belongs
to (`ray start` wrote its address), `host:port` the cluster whose head listens
there. An address where no Ray head answers — nothing listens, or something
that does not speak gRPC (a Ray head's protocol) — fails within a few seconds,
in one line naming the address and the fix.
Workers import this checkout's `pipeline` (its directory is put first on
their PYTHONPATH) and run in the driver's working directory, where the
relative paths of params.yaml (the store, artifacts/splits, data) point: on a
cluster every node needs the checkout at the same path, on shared storage.
"""
from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

from pipeline.config import ConfigError
from pipeline.fileio import one_line
from pipeline.runs.lock import Job, locked_run
from pipeline.rundir import finished_metrics
from pipeline.train import train_run

__all__ = ["PROBE_SECONDS", "connect", "resolve_address", "run_on_ray"]

PROBE_SECONDS = 3.0  # how long a cluster's head may take to accept a TCP connection, and to answer on it
# HTTP/2's client connection preface and an empty SETTINGS frame (RFC 9113 §3.4); a gRPC server (a Ray head's
# GCS) answers with its own SETTINGS frame: a 9-byte header whose fourth byte, the frame type, is 4.
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
_ROOT = str(Path(__file__).resolve().parents[2])  # the checkout that holds `pipeline`
_TOKEN = Path.home() / ".ray" / "auth_token"  # where `ray start` and ray.init keep the cluster token
_FIX = "start it there with `ray start --head`, or set compute.ray_address to '' for a local Ray instance"


def resolve_address(address: str) -> str:
    """The `host:port` of the Ray head that `address` names (`auto`: this node's cluster); ConfigError if none."""
    if address == "auto":
        found = os.environ.get("RAY_ADDRESS", "")
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        if not found and current.exists():
            found = current.read_text().strip()
        if not found or found == "auto":
            raise ConfigError("compute.ray_address is 'auto' but this node belongs to no Ray cluster (no RAY_ADDRESS, "
                              f"no {current}); {_FIX}")
        address = found
    return address.removeprefix("ray://")


def _token_auth() -> None:
    """Ray 2.60 turns token auth on by itself only for a cluster it finds (`auto`), not for a named address:
    do what it does then — use the token this node has (`ray start` wrote it) unless RAY_AUTH_MODE is set."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available)
    except ImportError:  # another Ray version: RAY_AUTH_MODE / RAY_AUTH_TOKEN as its docs say
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _probe(address: str, shown: str) -> None:
    """ConfigError within about 2 × PROBE_SECONDS unless a gRPC server (a Ray head) answers at `address`."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"compute.ray_address {shown!r} must be '', 'auto' or host:port (e.g. 10.0.0.1:6379)")
    try:
        conn = socket.create_connection((host, int(port)), timeout=PROBE_SECONDS)
    except OSError as e:
        raise ConfigError(f"compute.ray_address {shown!r}: no Ray head answers at {host}:{port} within "
                          f"{PROBE_SECONDS:g} s ({one_line(e)}); {_FIX}") from None
    with conn:
        try:
            conn.sendall(_PREFACE)
            answer = conn.recv(9)
        except OSError:  # silence (a timeout) or a reset: no gRPC server
            answer = b""
    if answer[3:4] != b"\x04":
        raise ConfigError(f"compute.ray_address {shown!r}: something listens at {host}:{port} but it is no Ray head "
                          f"(no gRPC answer within {PROBE_SECONDS:g} s); give the address `ray start --head` printed "
                          "on the head (port 6379 by default), or set compute.ray_address to '' for a local Ray "
                          "instance")


def connect(address: str = "", num_cpus: int | None = None) -> bool:
    """Connect this process to Ray (see the module doc for `address`); True if it started a local instance.

    A named address is probed first (ConfigError within PROBE_SECONDS if nobody answers). An instance
    this process is already connected to is reused (and not stopped afterwards).
    """
    import ray

    target = resolve_address(address) if address else ""
    if target:
        _probe(target, address)
    if ray.is_initialized():
        return False
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")]))}}
    if target:
        _token_auth()
        try:
            ray.init(address=target, runtime_env=env, log_to_driver=True, logging_level="WARNING")
        except ConnectionError as e:
            raise ConfigError(f"compute.ray_address {address!r}: the Ray head at {target} answers but refused the "
                              f"connection ({one_line(e)}); its token must be in {_TOKEN} (or RAY_AUTH_TOKEN) with "
                              "RAY_AUTH_MODE=token, or the cluster started with RAY_AUTH_MODE=disabled") from None
        return False
    ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, runtime_env=env,
             logging_level="WARNING")
    return True


def _task(fn: Callable, cfg: Any, out: str, cwd: str) -> dict:
    """One run in a Ray worker, in the driver's working directory (relative store, split and data paths)."""
    os.chdir(cwd)
    return locked_run(fn, cfg, Path(out))


def run_on_ray(jobs: Mapping[str, Job], compute: Mapping[str, Any],
               report: Callable[[str, dict], None]) -> None:
    """Train `jobs` (run id → job) as Ray tasks; `report(run id, metrics)` as each finishes.

    Runs already finished in the store are reported without a task (Ray is not even started when
    all are). A task that raises ends the stage with that error (its first line); one whose worker
    died more than `compute.max_retries` times with a one-line RuntimeError.
    """
    pending = {}
    for key, (fn, cfg, out) in jobs.items():
        done = finished_metrics(cfg.identity(), out) if fn is train_run and out.is_dir() else None
        if done is not None:
            report(key, done)
        else:
            pending[key] = (fn, cfg, out)
    if not pending:
        return
    import ray
    from ray.exceptions import RayTaskError

    started = connect(compute.get("ray_address", ""))
    try:
        task = ray.remote(_task).options(
            num_cpus=compute.get("threads", 1), num_gpus=compute.get("gpus_per_run", 0),
            max_retries=compute.get("max_retries", 3), retry_exceptions=False)
        cwd = os.getcwd()
        refs = {task.remote(fn, cfg, str(out), cwd): key for key, (fn, cfg, out) in pending.items()}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            key = refs.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except RayTaskError as e:
                cause = e.cause if isinstance(e.cause, BaseException) else RuntimeError(one_line(e))
                raise cause from None
            except ray.exceptions.RayError as e:
                raise RuntimeError(f"run {key} failed on Ray after {compute.get('max_retries', 3)} retries "
                                   f"({type(e).__name__}: {one_line(e)}); rerun the stage to resume it from "
                                   "its last checkpoint") from None
            report(key, result)
    finally:
        if started:
            ray.shutdown()
