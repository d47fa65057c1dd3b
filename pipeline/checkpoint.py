"""Checkpoints of a training run (everything needed to resume it bit for bit) and its final model.

A checkpoint holds the run's identity (the result-determining config), the
epochs done and their history, the model, optimizer and scheduler states and
every RNG state (torch, CUDA, the loader's generator, NumPy, Python). It and
the model file are written atomically and read back with `weights_only=True`
through `fileio.read_back`: a damaged or unfitting file is set aside, never
overwritten.
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
from pipeline.fileio import DamagedFile, one_line, read_back, set_aside_damaged, write_atomic

__all__ = ["RunState", "load_model_state", "resume", "save_checkpoint", "save_model_state"]

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


def _save(obj: object, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_atomic(path, buf.getvalue())


def _load(data: bytes) -> object:
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)


def save_checkpoint(run: RunState, identity: dict, path: Path) -> None:
    """Write `run` (tagged with the config `identity`) to `path` atomically."""
    _save({
        "identity": identity,
        "epoch": run.epoch,
        "history": run.history,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "rng": _rng_state(run),
    }, path)


def _parse_checkpoint(data: bytes) -> dict:
    ckpt = _load(data)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("identity"), dict):
        raise ValueError("no config in it")
    return ckpt


def resume(fresh: Callable[[], RunState], identity: dict, path: Path, epochs: int) -> RunState:
    """`fresh()`, restored from the checkpoint at `path` when it is valid for a run of `epochs` epochs.

    An unreadable checkpoint, or one whose states do not fit the run, is set aside (`<name>.bad-<time>`)
    in one warning line and the run starts from scratch (rebuilt, so nothing half-loaded survives); one of
    another config raises a ConfigError and is kept.
    """
    run = fresh()
    if not path.exists():
        return run
    try:
        ckpt = read_back(path, _parse_checkpoint)
    except DamagedFile as e:
        log.warning("checkpoint %s, starting from scratch", e)
        return run
    if ckpt["identity"] != identity:
        raise identity_mismatch(ckpt["identity"], identity, path)
    try:
        if not (1 <= ckpt["epoch"] <= epochs and len(ckpt["history"]) == ckpt["epoch"]):
            raise ValueError("epoch count out of range")
        run.model.load_state_dict(ckpt["model"])
        run.optimizer.load_state_dict(ckpt["optimizer"])
        run.scheduler.load_state_dict(ckpt["scheduler"])
        _set_rng_state(run, ckpt["rng"])
        run.epoch, run.history = ckpt["epoch"], list(ckpt["history"])
    except Exception as e:  # noqa: BLE001 - a state that does not fit means "start over", never a crash
        damaged = set_aside_damaged(path, f"does not fit this run ({type(e).__name__}: {one_line(e, 120)})")
        log.warning("checkpoint %s, starting from scratch", damaged)
        return fresh()
    log.info("resuming %s after epoch %d", path.parent, run.epoch)
    return run


def save_model_state(model: nn.Module, path: Path) -> None:
    """Write `model`'s state_dict to `path` atomically (a finished run's model file)."""
    _save(model.state_dict(), path)


def load_model_state(model: nn.Module, path: Path) -> None:
    """Load the state_dict at `path` (as `save_model_state` wrote it) into `model`.

    A file that is damaged (truncated, garbage, empty) or does not fit `model` is set aside
    (`<name>.bad-<time>`) and DamagedFile raised, one line naming it: rerunning trains the run again.
    """
    def fit(data: bytes) -> None:
        model.load_state_dict(_load(data))

    read_back(path, fit)
