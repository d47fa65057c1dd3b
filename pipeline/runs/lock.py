"""The run lock on every backend: one process trains a configuration at a time.

A run trains while its process holds the run directory's lock (`pipeline.rundir.run_lock`, the same one
`python -m pipeline.train --out DIR` takes). A second claimant (another stage, experiment or node)
waits, then finds the run finished.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from pipeline.config import RunConfig
from pipeline.rundir import run_lock

__all__ = ["Job", "locked_run"]

Job = tuple[Callable[[RunConfig, Path], dict], RunConfig, Path]  # fn, config, run directory


def locked_run(fn: Callable[[RunConfig, Path], dict], cfg: RunConfig, out: Path) -> dict:
    """`fn(cfg, out)` under the run's lock."""
    with run_lock(out):
        return fn(cfg, out)
