"""The pipeline's experiment stages, one function each (check, split, tune_wd, train, grid, ann2snn): each
trains its plan (`pipeline.runs.plans`) in the run store and writes its points table under the item's
`Layout`; the stages that report on them are in `pipeline.runs.reporting`, the order is dvc.yaml's.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import pandas as pd
from torch.utils.data import DataLoader

from pipeline.checkpoint import load_model_state
from pipeline.config import RunConfig
from pipeline.convert import check_conversion, evaluate_ann, evaluate_converted
from pipeline.data import load_datasets
from pipeline.fileio import probe_writable, write_atomic
from pipeline.rundir import MODEL, finished_metrics
from pipeline.runs.layout import Layout
from pipeline.runs.params import write_checked
from pipeline.runs.plans import (Plan, ann2snn_plan, baseline_energy, chain_levels, choose_baseline, describe,
                                 grid_plan, grid_references, penalty_plan, point_row, split_path, tune_wd_plan,
                                 warn_skipped)
from pipeline.runs.store import export_runs, run_all, run_id
from pipeline.train import build_model, run_device

__all__ = ["ann2snn", "check", "evaluate_trained", "grid", "run_plan", "split", "train", "tune_wd", "write_points",
           "write_rows"]


def check(params: dict, layout: Layout) -> None:
    """The item's params, resolved and validated whole (`params.resolve`): the run store probed for
    writability, each section written to `layout.checked` for the later stages to depend on."""
    probe_writable(params["compute"]["store"], "compute.store")
    write_checked(params, layout.checked)


def split(params: dict, layout: Layout) -> None:
    """The seeded train/validation(/test) split of every dataset in use (spec §5)."""
    data = params["data"]
    for dataset in sorted({s["dataset"] for s in params["settings"]}):
        load_datasets(dataset, data["data_dir"], split_seed=data["split_seed"], download=data["download"],
                      split_file=split_path(layout.splits, dataset), randaugment=False)


def run_plan(plan: Plan, compute: dict, out_dir: Path) -> list[dict]:
    """Train every run of `plan` in the run store; copy each run's records to `out_dir/runs`."""
    configs = [cfg for _, cfg in plan]
    metrics = run_all(configs, compute["store"], compute["workers"], label=describe, compute=compute)
    export_runs(configs, compute["store"], out_dir / "runs")
    return metrics


def write_rows(rows: list[dict], path: Path) -> None:
    """A stage's points table: one CSV row per run (or per converted run and T), written atomically."""
    write_atomic(path, pd.DataFrame(rows).to_csv(index=False))


def write_points(plan: Plan, metrics: list[dict], baselines: dict[str, dict], path: Path) -> None:
    """One CSV row per run, energies relative to each setting's baseline (NaN where it diverged)."""
    write_rows([point_row(name, cfg, m, baseline_energy(baselines[name]))
                 for (name, cfg), m in zip(plan, metrics)], path)


def tune_wd(params: dict, layout: Layout) -> None:
    """Baseline runs (λ' = 0) over a λ_WD sweep; the best mean validation accuracy wins."""
    plan = tune_wd_plan(params["settings"], params, layout.splits)
    out = layout.experiment("tune_wd")
    metrics = run_plan(plan, params["compute"], out)
    baselines = choose_baseline(plan, metrics)
    warn_skipped(baselines)
    write_atomic(layout.baselines, json.dumps(baselines, indent=2))
    write_points(plan, metrics, baselines, out / "points.csv")


def train(params: dict, layout: Layout) -> None:
    """The Sec. 4.3 trade-off runs of every penalty in `penalty.kinds` (λ' × p × seeds per setting)."""
    baselines = layout.load_baselines()
    plan = [run for kind in params["penalty"]["kinds"]
            for run in penalty_plan(params["settings"], params, layout.splits, kind, baselines)]
    out = layout.experiment("train")
    write_points(plan, run_plan(plan, params["compute"], out), baselines, out / "points.csv")


def grid(params: dict, layout: Layout) -> None:
    """The Sec. 4.2 grid: Ω_syn (p = 1) over raw λ × λ_WD × B_BN, each with 0, energies relative to the
    λ = λ_WD = B_BN = 0 run of the same setting and seed."""
    plan = grid_plan(params["settings"], params, layout.splits)
    out = layout.experiment("grid")
    metrics = run_plan(plan, params["compute"], out)
    write_rows([point_row(name, cfg, m, reference)
                 for (name, cfg), m, reference in zip(plan, metrics, grid_references(plan, metrics))],
                out / "points.csv")


def evaluate_trained(cfg: RunConfig, run_dir: Path, steps: Sequence[int], *, neuron: str = "multi",
                     encoding: str = "spread") -> list[dict]:
    """Convert the QReLU ANN trained by `train_run(cfg, run_dir)` and evaluate it at each T in `steps`.

    Each result also carries the ANN's `diverged` flag, training `epoch_seconds`, and the ANN's own
    `ann_test_accuracy` and `ann_energy_pj` (`evaluate_ann`, the same for every T).
    """
    check_conversion(steps, neuron, encoding)
    trained = finished_metrics(cfg.identity(), run_dir)
    if trained is None:
        raise FileNotFoundError(f"{run_dir} holds no finished run to convert; rerun the stage to train it")
    device = run_device(cfg)
    ann = build_model(cfg)
    load_model_state(ann, run_dir / MODEL)
    ann.to(device)
    data = load_datasets(cfg.dataset, cfg.data_dir, split_seed=cfg.split_seed, split_file=cfg.split_file,
                         randaugment=False, download=cfg.download)
    loader = DataLoader(data.test, batch_size=cfg.batch_size)
    extra = {"diverged": trained["diverged"], "epoch_seconds": trained["epoch_seconds"], **evaluate_ann(ann, loader)}
    return [{**evaluate_converted(ann, loader, T, neuron=neuron, encoding=encoding), **extra} for T in steps]


def ann2snn(params: dict, layout: Layout) -> None:
    """Sec. 4.3.3: QReLU ANNs trained with a synaptic-operation penalty (per protocol, `plans.ann2snn_plan`),
    converted with each of `ann2snn.neuron` and run for T steps; one row per network, neuron and T."""
    baselines = layout.load_baselines()
    plan = ann2snn_plan(params["settings"], params, layout.splits, baselines)
    out = layout.experiment("ann2snn")
    for level in chain_levels(plan):  # a ramp's snapshot k starts from snapshot k − 1
        run_plan(level, params["compute"], out)
    conversion, store = params["ann2snn"], Path(params["compute"]["store"])
    write_rows([point_row(name, cfg, {**result, "protocol": protocol}, baseline_energy(baselines[name]),
                          curve="ann2snn", T=result["T"])
                for protocol, name, cfg in plan for neuron in conversion["neuron"]
                for result in evaluate_trained(cfg, store / run_id(cfg), conversion["T"], neuron=neuron,
                                               encoding=conversion["encoding"])],
               out / "points.csv")
