"""The run lock: one process trains a configuration at a time, on any backend.

A run trains while its process holds an exclusive `flock` on `store/<run id>/.lock`. A second
claimant (another stage, experiment or node) waits, then finds the run finished. The kernel drops
the lock when its holder dies, so a killed worker never leaves a stale claim; on a cluster the store
must be on a filesystem whose `flock` works across nodes (NFSv4, Lustre, CephFS).
"""
from __future__ import annotations

import contextlib
import fcntl
import sys
from pathlib import Path
from typing import Callable, Iterator

from pipeline.config import RunConfig

__all__ = ["LOCK", "Job", "locked_run", "run_lock"]

LOCK = ".lock"  # in a run directory: held (flock) while a process trains the run


@contextlib.contextmanager
def run_lock(out: Path | str) -> Iterator[None]:
    """Hold an exclusive lock on `out/.lock` (created with `out`); waits while another process holds it.

    The kernel drops the lock when its holder dies, so a killed worker never leaves a stale claim.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"{out}: another process is training this run; waiting for it", file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


Job = tuple[Callable[[RunConfig, Path], dict], RunConfig, Path]  # fn, config, run directory


def locked_run(fn: Callable[[RunConfig, Path], dict], cfg: RunConfig, out: Path) -> dict:
    """`fn(cfg, out)` under the run's lock."""
    with run_lock(out):
        return fn(cfg, out)
