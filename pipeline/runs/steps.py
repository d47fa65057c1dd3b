"""The pipeline's training steps, one function per DVC stage (check … ann2snn), each writing under a
profile's `Layout`; the steps that report on them are in `pipeline.runs.reports`.

The default profile runs them as separate DVC stages (`stages/*.py`, one call each); the `claims`
stage runs them all in order for the claims profile (`reports.run_profile`), into `results/claims/`.
"""
from __future__ import annotations

import json

from pipeline.data import load_datasets
from pipeline.fileio import probe_writable, write_atomic
from pipeline.runs.conversion import evaluate_trained
from pipeline.runs.plans import (ann2snn_plan, baseline_energy, choose_baseline, grid_plan, grid_references,
                                 penalty_plan, point_row, split_path, tune_wd_plan, warn_skipped)
from pipeline.runs.stage import Layout, run_plan, write_points, write_rows
from pipeline.runs.store import run_id

__all__ = ["ann2snn", "check", "grid", "split", "train", "tune_wd"]


def check(params: dict, layout: Layout) -> None:
    """The params were validated on loading; the run store is probed for writability; a stamp."""
    probe_writable(params["compute"]["store"], "compute.store")
    write_atomic(layout.checked, "params.yaml and its profile are valid\n")


def split(params: dict, layout: Layout) -> None:
    """The seeded train/validation(/test) split of every dataset in use (spec §5)."""
    data = params["data"]
    for dataset in sorted({s["dataset"] for s in params["settings"]}):
        load_datasets(dataset, data["data_dir"], split_seed=data["split_seed"], download=data["download"],
                      split_file=split_path(layout.splits, dataset), randaugment=False)


def tune_wd(params: dict, layout: Layout) -> None:
    """Baseline runs (λ' = 0) over a λ_WD sweep; the best mean validation accuracy wins."""
    plan = tune_wd_plan(params["settings"], params, layout.splits)
    metrics = run_plan(plan, params["compute"], layout.baselines.parent)
    baselines = choose_baseline(plan, metrics)
    warn_skipped(baselines)
    write_atomic(layout.baselines, json.dumps(baselines, indent=2))
    write_points(plan, metrics, baselines, layout.baselines.parent / "points.csv")


def train(params: dict, layout: Layout, kind: str) -> None:
    """The Sec. 4.3 trade-off runs of penalty `kind` (λ' × p × seeds per setting)."""
    baselines = layout.load_baselines()
    plan = penalty_plan(params["settings"], params, layout.splits, kind, baselines)
    out = layout.artifacts / "train" / kind
    write_points(plan, run_plan(plan, params["compute"], out), baselines, out / "points.csv")


def grid(params: dict, layout: Layout) -> None:
    """The Sec. 4.2 grid: Ω_syn (p = 1) over raw λ × λ_WD × B_BN, each with 0, energies relative to the
    λ = λ_WD = B_BN = 0 run of the same setting and seed."""
    plan = grid_plan(params["settings"], params, layout.splits)
    out = layout.artifacts / "grid"
    metrics = run_plan(plan, params["compute"], out)
    write_rows([point_row(name, cfg, m, reference)
                for (name, cfg), m, reference in zip(plan, metrics, grid_references(plan, metrics))],
               out / "points.csv")


def ann2snn(params: dict, layout: Layout) -> None:
    """Sec. 4.3.3: QReLU ANNs trained with a synaptic-operation penalty, converted and run for T steps."""
    baselines = layout.load_baselines()
    plan = ann2snn_plan(params["settings"], params, layout.splits, baselines)
    out = layout.artifacts / "ann2snn"
    run_plan(plan, params["compute"], out)
    conversion = params["ann2snn"]
    write_rows([point_row(name, cfg, result, baseline_energy(baselines[name]), curve="ann2snn", T=result["T"])
                for name, cfg in plan
                for result in evaluate_trained(cfg, out / "runs" / run_id(cfg), conversion["T"],
                                               neuron=conversion["neuron"], encoding=conversion["encoding"])],
               out / "points.csv")
