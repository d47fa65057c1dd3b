"""What a profile asks of a cluster: runs, epochs, images and an estimated wall time per stage.

    python -m pipeline.runs.estimate PROFILE [--gpus N ...] [--gpu-tflops F] [--utilization U] [--params FILE]

PROFILE is a file stem in profiles/ (default, paper); it is overlaid on
params.yaml as `dvc exp run -S profile=PROFILE` would. For every training
stage the script counts the runs (distinct run-store ids; a run an earlier
stage already trains is counted there only), their epochs and the images
they process (per epoch the training and validation sets, then the test set
once), and estimates the wall time on N GPUs, one run per GPU at a time.

The time is an estimate from arithmetic, not a measurement (no GPU was at
hand): a run's forward FLOPs per image are counted on the model itself
(2 × multiply-adds of every convolution and linear layer, at the setting's
width and input shape); a training image costs 3× that (forward and
backward), a validation or test image 1×; a GPU sustains `--gpu-tflops` ×
`--utilization` FLOP/s. The defaults assume an NVIDIA A100's FP32 peak,
19.5 TFLOP/s (NVIDIA A100 datasheet), at 30 % utilisation — an assumption
for 32×32 images at batch 100, where kernels are small; the spiking
neurons', the penalty's and the loader's costs are not counted (bench/ puts
the penalty within a few percent of a step on CPU). Scale the times by your
own measured images/s over the one printed per model.

The makespan is the stages one after another, as `dvc repro` runs them,
each stage's runs placed longest first on the least-loaded of N workers;
its lower bound, total GPU-hours ÷ N, is printed beside it.
"""
from __future__ import annotations

import argparse
import heapq
import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from pipeline.config import ConfigError, RunConfig
from pipeline.data import INFO
from pipeline.models import create_model
from pipeline.runs.params import profiled_params
from pipeline.runs.plans import Plan, ann2snn_plan, chain_levels, grid_plan, penalty_plan, tune_wd_plan
from pipeline.runs.store import run_id

__all__ = ["forward_flops", "load_profile", "main", "makespan", "stage_plans"]

A100_FP32_TFLOPS = 19.5  # NVIDIA A100 Tensor Core GPU datasheet: FP32 peak (without TF32)
UTILIZATION = 0.3  # assumed share of that peak a 32×32, batch-100 training step sustains


def load_profile(profile: str, path: Path | str = "params.yaml") -> dict:
    """params.yaml with `profile` overlaid and checked, as the stages see it under `-S profile=PROFILE`."""
    return profiled_params(path, profile)


def stage_plans(params: dict, splits: str = "artifacts/default/splits") -> dict[str, Plan]:
    """Every training stage's plan; the tuned λ_WD (not known before tune_wd runs) is each setting's first."""
    settings = params["settings"]
    baselines = {s["name"]: {"weight_decay": s.get("weight_decays", params["tune_wd"]["weight_decays"])[0]}
                 for s in settings}
    plans = {"tune_wd": tune_wd_plan(settings, params, splits)}
    plans["train"] = [run for kind in params["penalty"]["kinds"]
                      for run in penalty_plan(settings, params, splits, kind, baselines)]
    plans["grid"] = grid_plan(settings, params, splits)
    for k, level in enumerate(chain_levels(ann2snn_plan(settings, params, splits, baselines))):
        plans["ann2snn" if k == 0 else f"ann2snn+{k}"] = level  # a ramp's link k waits for link k − 1
    return plans


_FLOPS: dict[tuple, float] = {}


def forward_flops(cfg: RunConfig) -> float:
    """FLOPs of one image's forward pass: 2 × the multiply-adds of every Conv2d and Linear layer."""
    info = INFO[cfg.dataset]
    key = (cfg.model, cfg.width, info.in_channels, info.input_size, info.num_classes)
    if key not in _FLOPS:
        model = create_model(cfg.model, in_channels=info.in_channels, input_size=info.input_size,
                             num_classes=info.num_classes, width=cfg.width, psi=None).eval()
        macs = []

        def count(layer: nn.Module, args: tuple, out: torch.Tensor) -> None:
            if isinstance(layer, nn.Conv2d):
                k = layer.kernel_size[0] * layer.kernel_size[1] * layer.in_channels // layer.groups
                macs.append(out[0].numel() * k)
            else:
                macs.append(layer.in_features * layer.out_features)

        hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        with torch.no_grad():
            model(torch.zeros(1, info.in_channels, info.input_size, info.input_size))
        for hook in hooks:
            hook.remove()
        _FLOPS[key] = 2.0 * sum(macs)
    return _FLOPS[key]


def _images(cfg: RunConfig) -> tuple[int, int, int]:
    train, val, test = INFO[cfg.dataset].sizes
    return min(train, cfg.limit_train or train), val, test


def run_cost(cfg: RunConfig, flops_per_s: float) -> tuple[int, float]:
    """(images processed, estimated GPU seconds) of one run."""
    train, val, test = _images(cfg)
    images = cfg.epochs * (train + val) + test
    flops = forward_flops(cfg) * (3 * cfg.epochs * train + cfg.epochs * val + test)
    return images, flops / flops_per_s


def makespan(seconds: Sequence[float], workers: int) -> float:
    """Longest-first list scheduling of jobs on `workers` identical workers: when the last one ends."""
    loads = [0.0] * max(1, min(workers, len(seconds) or 1))
    for s in sorted(seconds, reverse=True):
        heapq.heapreplace(loads, loads[0] + s)
    return max(loads)


def _duration(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def report(params: dict, gpus: Sequence[int], flops_per_s: float, tflops: float, utilization: float) -> str:
    """The plan as printed: one row per stage and a total, wall times for each N in `gpus`."""
    plans, seen = stage_plans(params), set()
    lines = [f"profile {params['profile']}: {len(params['settings'])} setting(s), "
             f"{params['train']['epochs']} epochs, batch {params['train']['batch_size']}",
             f"assumed GPU throughput: {tflops:g} TFLOP/s FP32 peak x {utilization:.0%} utilisation = "
             f"{flops_per_s / 1e12:.2f} TFLOP/s sustained (NVIDIA A100 datasheet FP32 peak; utilisation assumed); "
             "ESTIMATE, not measured"]
    by_model = {}
    for plan in plans.values():
        for _, cfg in plan:
            name = f"{cfg.model} x{cfg.width:g} on {cfg.dataset}"
            by_model[name] = flops_per_s / (3 * forward_flops(cfg))
    lines.append("assumed training images/s per GPU: "
                 + ", ".join(f"{name} {rate:,.0f}" for name, rate in by_model.items()))
    header = f"{'stage':<14}{'runs':>7}{'epochs':>10}{'images':>15}{'GPU-hours':>11}"
    header += "".join(f"{f'N={n}':>12}" for n in gpus)
    lines += [header, "-" * len(header)]
    total_runs = total_epochs = total_images = 0
    total_seconds, span = 0.0, {n: 0.0 for n in gpus}
    for stage, plan in plans.items():
        unique = {}
        for _, cfg in plan:
            key = run_id(cfg)
            if key not in seen:
                seen.add(key)
                unique[key] = cfg
        costs = [run_cost(cfg, flops_per_s) for cfg in unique.values()]
        epochs = sum(cfg.epochs for cfg in unique.values())
        images = sum(i for i, _ in costs)
        seconds = [s for _, s in costs]
        row = f"{stage:<14}{len(unique):>7,}{epochs:>10,}{images:>15,}{sum(seconds) / 3600:>11,.1f}"
        for n in gpus:
            stage_span = makespan(seconds, n) if seconds else 0.0
            span[n] += stage_span
            row += f"{_duration(stage_span):>12}"
        lines.append(row)
        total_runs, total_epochs, total_images = total_runs + len(unique), total_epochs + epochs, total_images + images
        total_seconds += sum(seconds)
    lines.append("-" * len(header))
    lines.append(f"{'total':<14}{total_runs:>7,}{total_epochs:>10,}{total_images:>15,}{total_seconds / 3600:>11,.1f}"
                 + "".join(f"{_duration(span[n]):>12}" for n in gpus))
    lines.append(f"{'lower bound':<57}" + "".join(f"{_duration(total_seconds / n):>12}" for n in gpus))
    lines.append("N=…: estimated makespan on N GPUs, one run per GPU at a time, stages one after another "
                 "(as dvc repro runs them); lower bound: GPU-hours / N")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.runs.estimate", description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="a profile in profiles/ (default, paper)")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1], help="GPU counts to estimate for (default 1)")
    parser.add_argument("--gpu-tflops", type=float, default=A100_FP32_TFLOPS,
                        help=f"peak FLOP/s of one GPU, in TFLOP/s (default {A100_FP32_TFLOPS}: A100 FP32)")
    parser.add_argument("--utilization", type=float, default=UTILIZATION,
                        help=f"share of the peak a training step sustains (default {UTILIZATION})")
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.gpus) or args.gpu_tflops <= 0 or not 0 < args.utilization <= 1:
        parser.exit(2, "error: --gpus must be >= 1, --gpu-tflops > 0, 0 < --utilization <= 1\n")
    torch.set_num_threads(1)
    try:
        params = load_profile(args.profile, args.params)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report(params, args.gpus, args.gpu_tflops * 1e12 * args.utilization, args.gpu_tflops, args.utilization))
    return 0


if __name__ == "__main__":
    sys.exit(main())
