"""One training run (spec §4): objective Eq. 21, λ schedule, checkpoints, metrics.

L = mean_n [CE(f(x_n), t_n) + λ_e·Ω(s(x_n))] + λ_WD·(‖W‖² + B_BN·‖W_BN‖²)   (Eq. 21)
with λ_e = λ·e/E at epoch e of E, and λ = λ'/Ω(1) when the normalized λ' is
given. The run directory (layout: `pipeline.rundir`) holds the checkpoint
(after every epoch; a rerun resumes from it, see `pipeline.checkpoint`), the
history and finally the metrics and model. Usage:

    python -m pipeline.train --dataset digits --penalty syn --lam-norm 8 --out runs/x
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from pipeline.checkpoint import RunState, resume, save_checkpoint, save_model_state
from pipeline.cli import command_line
from pipeline.config import RunConfig, device_kind
from pipeline.data import INFO, load_datasets, make_loaders
from pipeline.energy import ActivityMeter
from pipeline.fileio import probe_writable, write_atomic
from pipeline.models import create_model
from pipeline.neuron import NEURON_KINDS, neurons
from pipeline.numerics import environment, pin_torch
from pipeline.penalties import batch_penalty, omega_all_firing, penalty_basis
from pipeline.rundir import (CHECKPOINT, HISTORY, HISTORY_COLUMNS, METRICS, MODEL, SPLIT, clear_blockers,
                             finished_metrics)

__all__ = ["STATS", "Objective", "RunInterrupted", "build_model", "evaluate", "l2_penalty", "lam_coefficient", "main",
           "run_device", "train_run", "train_step"]

log = logging.getLogger(__name__)


def lam_coefficient(cfg: RunConfig, epoch: int, omega_1: float) -> float:
    """λ_e = λ·e/E (1-based epoch e), λ = λ'/Ω(1) for the normalized intensity (Sec. 3.3.2)."""
    lam = cfg.lam_norm / omega_1 if cfg.lam_norm else cfg.lam
    return lam * epoch / cfg.epochs


def l2_penalty(model: nn.Module, bn_decay: int) -> Tensor:
    """‖W‖² + B_BN·‖W_BN‖² (Eq. 21): conv/FC weights, and BN affine parameters if B_BN = 1."""
    terms = [m.weight.square().sum() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if bn_decay:
        terms += [q.square().sum() for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                  for q in (m.weight, m.bias) if q is not None]
    return torch.stack(terms).sum()


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, meter: ActivityMeter | None = None) -> float:
    """Accuracy (fraction) of `model` on `loader`; feeds every batch's spikes to `meter`."""
    model.eval()
    device = next(model.parameters()).device
    correct = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        correct += (model(x).argmax(1) == y).sum()
        total += len(y)
        if meter is not None:
            meter.update([m.spikes for _, m in neurons(model)])
    return int(correct) / max(total, 1)


def run_device(cfg: RunConfig) -> torch.device:
    """The device `cfg.device` names (`auto`: CUDA when available, else the CPU), with the process's numerics
    pinned (`pipeline.numerics.pin_torch`) and its thread count set to the run's: call before the run's first
    tensor operation."""
    pin_torch()
    torch.set_num_threads(cfg.threads)
    return torch.device(cfg.device if cfg.device != "auto" else device_kind("auto"))


def build_model(cfg: RunConfig) -> nn.Module:
    """The run's network (spiking, or QReLU for the ANN→SNN baseline) with ψ attached."""
    info = INFO[cfg.dataset]
    return create_model(
        cfg.model, in_channels=info.in_channels, input_size=info.input_size, num_classes=info.num_classes,
        width=cfg.width, psi=cfg.psi,
        neuron=lambda: NEURON_KINDS[cfg.neuron](cfg.surrogate, cfg.alpha, cfg.tau, cfg.u_th),
    )


def _warm_start_state(cfg: RunConfig, out_dir: Path) -> dict[str, Tensor]:
    """The final weights of the finished run `cfg.warm_start` names, a sibling of `out_dir` in the run store."""
    parent = out_dir.parent / cfg.warm_start
    if not (parent / METRICS).is_file() or not (parent / MODEL).is_file():
        raise FileNotFoundError(f"{parent} holds no finished run to warm-start from; train it first")
    return torch.load(parent / MODEL, weights_only=True, map_location="cpu")


def _fresh_run(cfg: RunConfig, device: torch.device, out_dir: Path) -> RunState:
    """Seed every RNG, then build model (from `cfg.warm_start`'s final weights if set), optimizer and cosine
    schedule (T_max = E, η_min = 0)."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    random.seed(cfg.seed)
    model = build_model(cfg)
    if cfg.warm_start:
        model.load_state_dict(_warm_start_state(cfg, out_dir))
    model = model.to(device)
    if cfg.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=0.0)
    return RunState(model, opt, sched, torch.Generator().manual_seed(cfg.seed))


@dataclass(frozen=True)
class Objective:
    """The terms of Eq. 21 in one epoch: Ω_penalty^p weighted by λ_e, and weight decay."""

    penalty: str
    p: float
    coef: float  # λ_e
    weight_decay: float  # λ_WD
    bn_decay: int  # B_BN


STATS = ("loss", "ce", "correct", "spikes", "examples")  # the running sums train_step adds to


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, objective: Objective,
               sums: Tensor) -> None:
    """One optimizer step on Eq. 21; adds the batch's STATS (loss·n, ce·n, …) to `sums`.

    Nothing here waits for the device: a NaN/inf loss shows in `sums` (see `_train_epoch`).
    """
    out = model(x)
    ce = F.cross_entropy(out, y)
    loss = ce
    if objective.coef:
        loss = loss + objective.coef * batch_penalty(model, objective.penalty, objective.p)
    if objective.weight_decay:
        loss = loss + objective.weight_decay * l2_penalty(model, objective.bn_decay)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        n = len(y)
        spikes = torch.stack([m.spikes.sum() for _, m in neurons(model)]).sum()
        sums += torch.stack([loss.detach() * n, ce.detach() * n, (out.argmax(1) == y).sum(), spikes,
                             torch.tensor(n, device=sums.device)]).double()


_CHECK_EVERY = 20  # steps between reads of the running sums (the NaN check and the progress bar)


def _train_epoch(run: RunState, cfg: RunConfig, loader: DataLoader, coef: float, epoch: int) -> dict | None:
    """One epoch of Eq. 21; the epoch's mean statistics, or None if the loss became NaN/inf.

    A non-finite loss is noticed within _CHECK_EVERY steps (the run is diverged
    from then on, and its weights are no longer finite).
    """
    model, device = run.model, next(run.model.parameters()).device
    objective = Objective(cfg.penalty, cfg.p, coef, cfg.weight_decay, cfg.bn_decay)
    neurons_per_example = sum(m.psi.numel() for _, m in neurons(model))
    sums = torch.zeros(len(STATS), dtype=torch.float64, device=device)
    model.train()
    bar = tqdm(loader, desc=f"epoch {epoch}/{cfg.epochs}", leave=False, disable=None, dynamic_ncols=True)
    for step, (x, y) in enumerate(bar, start=1):
        train_step(model, run.optimizer, x.to(device), y.to(device), objective, sums)
        if step % _CHECK_EVERY == 0:
            loss_sum, _, correct, spike_sum, n = sums.tolist()
            if not math.isfinite(loss_sum):
                return None
            bar.set_postfix(loss=f"{loss_sum / n:.3f}", acc=f"{correct / n:.3f}",
                            rate=f"{spike_sum / (n * neurons_per_example):.3f}", refresh=False)
    loss_sum, ce_sum, correct, spike_sum, n = sums.tolist()
    if not math.isfinite(loss_sum):
        return None
    return {"loss": loss_sum / n, "ce": ce_sum / n, "train_accuracy": correct / n,
            "train_rate_mean": spike_sum / (n * neurons_per_example)}


def _history_csv(rows: Sequence[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during `train_run`. `epoch`: the last finished (checkpointed) epoch; None if the
    interrupt came before the run directory was read."""

    def __init__(self, epoch: int | None) -> None:
        super().__init__(epoch)
        self.epoch = epoch


def train_run(cfg: RunConfig, out_dir: Path | str, *, stop_after: int | None = None) -> dict | None:
    """Train (or resume, or just return) the run `cfg` in `out_dir`; returns its metrics.

    `stop_after` ends the call after that many epochs in total, as if
    interrupted (returns None); the next call resumes from the checkpoint.
    Ctrl-C raises `RunInterrupted` (a KeyboardInterrupt) naming the last finished epoch; an OSError (a full
    disk) leaves with that epoch as its `epoch` attribute (None: before the run directory was read).
    """
    saved: dict[str, int] = {}  # "epoch": the last epoch on disk, once the checkpoint has been read
    try:
        return _train_run(cfg, Path(out_dir), stop_after, saved)
    except KeyboardInterrupt:
        raise RunInterrupted(saved.get("epoch")) from None
    except OSError as e:
        e.epoch = saved.get("epoch")
        raise


def _train_run(cfg: RunConfig, out_dir: Path, stop_after: int | None, saved: dict[str, int]) -> dict | None:
    probe_writable(out_dir, "run directory")
    clear_blockers(out_dir)
    done = finished_metrics(cfg.identity(), out_dir)
    if done is not None:
        return done
    if cfg.split_file and not Path(cfg.split_file).exists():  # it will be written: fail now, not after loading
        probe_writable(Path(cfg.split_file).parent, "split file directory")
    device = run_device(cfg)
    run = resume(lambda: _fresh_run(cfg, device, out_dir), cfg.identity(), out_dir / CHECKPOINT, cfg.epochs)
    saved["epoch"] = run.epoch
    data = load_datasets(
        cfg.dataset, cfg.data_dir, split_seed=cfg.split_seed, split_file=cfg.split_file or out_dir / SPLIT,
        randaugment=cfg.randaugment, download=cfg.download, limit_train=cfg.limit_train,
    )
    train_loader, val_loader, test_loader = make_loaders(data.train, data.val, data.test, cfg.batch_size,
                                                         run.generator, workers=cfg.loader_workers)
    omega_1 = (omega_all_firing(penalty_basis(run.model, cfg.penalty), cfg.penalty, cfg.p) if cfg.lam_norm
               else math.nan)  # only λ' needs Ω(1)
    diverged = False
    partial_seconds = 0.0
    for epoch in range(run.epoch + 1, cfg.epochs + 1):
        if stop_after is not None and run.epoch >= stop_after:
            return None
        coef = lam_coefficient(cfg, epoch, omega_1)
        lr = run.optimizer.param_groups[0]["lr"]
        start = time.perf_counter()
        stats = _train_epoch(run, cfg, train_loader, coef, epoch)
        seconds = time.perf_counter() - start  # training only (Table 7 compares these), not validation
        if stats is None:
            log.warning("loss became NaN/inf in epoch %d; recording the run as diverged", epoch)
            diverged, partial_seconds = True, seconds
            break
        run.scheduler.step()
        meter = ActivityMeter(run.model)
        val_acc = evaluate(run.model, val_loader, meter)
        act = meter.summary()
        run.epoch = epoch
        run.history.append({"epoch": epoch, "lr": lr, "lam": coef, **stats, "val_accuracy": val_acc,
                            "rate_mean": act["rate_mean"], "energy_pj": act["energy_pj"], "epoch_seconds": seconds})
        log.info("epoch %d/%d  loss %.4f  train acc %.4f  val acc %.4f  rate %.4f  %.1fs",
                 epoch, cfg.epochs, stats["loss"], stats["train_accuracy"], val_acc, act["rate_mean"], seconds)
        write_atomic(out_dir / HISTORY, _history_csv(run.history))
        save_checkpoint(run, cfg.identity(), out_dir / CHECKPOINT)
        saved["epoch"] = epoch
    return _finish(cfg, out_dir, run, test_loader, diverged, partial_seconds)


def _finish(cfg: RunConfig, out_dir: Path, run: RunState, test_loader: DataLoader, diverged: bool,
            partial_seconds: float) -> dict:
    """Evaluate on the test set, write metrics.json and model.pt, drop the checkpoint."""
    meter = ActivityMeter(run.model)
    test_acc = evaluate(run.model, test_loader, meter)
    act = meter.summary()
    chance = 1 / INFO[cfg.dataset].num_classes
    seconds = [row["epoch_seconds"] for row in run.history] or [partial_seconds]
    metrics = {
        "test_accuracy": chance if diverged else test_acc,
        "val_accuracy": chance if diverged else run.history[-1]["val_accuracy"],
        "T": 1,  # time steps per example (Eq. 10): a single-step SNN; `pipeline.run_energy` reads it
        "energy_pj": act["energy_pj"],
        "energy_pj_layers": act["energy_pj_layers"],
        "rate_mean": act["rate_mean"],
        "rate_sum": act["rate_sum"],
        "rate_layers": act["rate_layers"],
        "dead_rate": act["dead_rate"],
        "diverged": diverged,
        "epoch_seconds": sum(seconds) / len(seconds),
        "epochs_run": run.epoch + int(diverged),  # a diverged epoch counts as run
        "environment": environment(str(next(run.model.parameters()).device)),
        "config": cfg.to_dict(),
    }
    save_model_state(run.model, out_dir / MODEL)
    write_atomic(out_dir / METRICS, json.dumps(metrics, indent=2))
    (out_dir / CHECKPOINT).unlink(missing_ok=True)
    return metrics


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipeline.train [--config FILE] [--key value ...] --out DIR` (see `pipeline.cli`)."""
    return command_line(train_run, argv)


if __name__ == "__main__":
    sys.exit(main())
