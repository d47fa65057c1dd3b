"""Checkpoints of a training run: everything needed to resume it bit for bit.

A checkpoint holds the run's identity (the result-determining config), the
epochs done and their history, the model, optimizer and scheduler states and
every RNG state (torch, CUDA, the loader's generator, NumPy, Python). It is
written atomically and loaded with `weights_only=True`.
"""
from __future__ import annotations

import io
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from pipeline.config import identity_mismatch
from pipeline.fileio import one_line, write_atomic

__all__ = ["RunState", "resume", "save_checkpoint"]

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """Everything a checkpoint restores."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # drives the training shuffle
    epoch: int = 0  # epochs completed
    history: list[dict] = field(default_factory=list)


def _rng_state(run: RunState) -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": run.generator.get_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(run: RunState, state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    run.generator.set_state(state["loader"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def save_checkpoint(run: RunState, identity: dict, path: Path) -> None:
    """Write `run` (tagged with the config `identity`) to `path` atomically."""
    buf = io.BytesIO()
    torch.save({
        "identity": identity,
        "epoch": run.epoch,
        "history": run.history,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": _rng_state(run),
    }, buf)
    write_atomic(path, buf.getvalue())


def resume(fresh: Callable[[], RunState], identity: dict, path: Path, epochs: int) -> RunState:
    """`fresh()`, restored from the checkpoint at `path` when it is valid for a run of `epochs` epochs.

    An unreadable or inconsistent checkpoint is reported in one line and the
    run starts from scratch (rebuilt, so nothing half-loaded survives); one of
    another config raises a ConfigError.
    """
    run = fresh()
    if not path.exists():
        return run
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        stored = ckpt["identity"]
        if not isinstance(stored, dict):
            raise TypeError("no config in it")
    except Exception as e:  # noqa: BLE001 - any damage means "start over", never a crash
        log.warning("checkpoint %s is unreadable (%s); starting from scratch", path, type(e).__name__)
        return run
    if stored != identity:
        raise identity_mismatch(stored, identity, path)
    try:
        if not (1 <= ckpt["epoch"] <= epochs and len(ckpt["history"]) == ckpt["epoch"]):
            raise ValueError("epoch count out of range")
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(run, ckpt["rng"])
        run.epoch, run.history = ckpt["epoch"], list(ckpt["history"])
    except Exception as e:  # noqa: BLE001
        log.warning("checkpoint %s is inconsistent (%s: %s); starting from scratch", path, type(e).__name__,
                    one_line(e))
        return fresh()
    log.info("resuming %s after epoch %d", path.parent, run.epoch)
    return run
