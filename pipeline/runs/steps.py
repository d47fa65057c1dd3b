"""The pipeline's steps, one function per DVC stage, each writing under a profile's `Layout`.

The default profile runs them as separate DVC stages (`stages/*.py`, one call each); the `claims`
stage runs them all in order for the claims profile (`run_profile`), into `results/claims/`.
"""
from __future__ import annotations

import json

import pandas as pd

from pipeline.accounting import accounting
from pipeline.data import load_datasets
from pipeline.figures import plot_layer_shares, plot_seed_spread, plot_tradeoff, plot_training_curves, results_readme
from pipeline.fileio import probe_writable, write_atomic
from pipeline.penalties import PENALTIES
from pipeline.runs.conversion import evaluate_trained
from pipeline.runs.plans import (ann2snn_plan, baseline_energy, choose_baseline, grid_plan, grid_references,
                                 penalty_plan, point_row, split_path, tune_wd_plan)
from pipeline.runs.results import (curve_histories, headline, note_skipped, tradeoff_points, warn_skipped,
                                   write_curve_series, write_plot_series)
from pipeline.runs.stage import Layout, run_plan, write_points, write_rows
from pipeline.runs.store import run_id
from pipeline.scoring import score_curves, seed_summary
from pipeline.tables import comparison_best, grid_table, method_comparison, time_table, write_table
from pipeline.verdicts import claim_table

__all__ = ["ann2snn", "check", "claims", "figures", "grid", "run_profile", "score", "split", "train", "tune_wd"]


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


def score(params: dict, layout: Layout) -> None:
    """Trade-off points, their scores (pooled over seeds, and per seed with mean ± sd), the Sec. 4.2 grid
    and training-time tables, the headline metrics."""
    cutoffs = params["score"]["cutoffs"]
    baselines = layout.load_baselines()
    skipped = warn_skipped(baselines)  # settings whose baseline diverged: no energy ratios, no curves
    points = tradeoff_points(layout.artifacts, baselines)
    tables = layout.tables
    write_table(points, tables / "tradeoff_points", floatfmt=".4g")
    scored = points[~points["setting"].isin(skipped)]
    scores = score_curves(scored, cutoffs)
    write_table(note_skipped(scores, skipped), tables / "tradeoff_scores", floatfmt=".3f")
    per_seed = score_curves(scored, cutoffs, by_seed=True)
    write_table(per_seed, tables / "seed_scores", floatfmt=".3f")
    summary = seed_summary(per_seed)
    write_table(summary, tables / "seed_summary", floatfmt=".3f")
    comparison = method_comparison(scores, summary)
    write_table(note_skipped(comparison, skipped), tables / "method_comparison", best=comparison_best(comparison),
                floatfmt=".3f")
    write_table(grid_table(pd.read_csv(layout.artifacts / "grid" / "points.csv")), tables / "grid", floatfmt=".3g")
    write_table(time_table(points[points["method"] != "ann2snn"]), tables / "training_time", floatfmt=".3f")
    write_plot_series(scored, layout.results / "plots" / "tradeoff")
    write_atomic(layout.headline, json.dumps(headline(scores, baselines, summary), indent=2) + "\n")


def figures(params: dict, layout: Layout) -> None:
    """Layer-wise shares (Figs. 1–2), trade-off curves (Figs. 3, 5) with their seed spread, training curves,
    and the results folder's README."""
    drawn, out = params["figures"], layout.results / "figures"
    plot_layer_shares({m: accounting(m)["layers"] for m in drawn["models"]}, out / "layer_shares")
    baselines = layout.load_baselines()
    setting = next(iter(baselines))
    points = pd.read_csv(layout.tables / "tradeoff_points.csv")
    points = points[~points["setting"].isin(warn_skipped(baselines))]  # diverged baseline: no energy ratios
    plot_tradeoff(points, out / "tradeoff", cutoff=drawn["cutoff"])
    if points["seed"].nunique() > 1:
        plot_seed_spread(points, out / "seed_spread")
    histories = curve_histories(layout.artifacts, baselines, drawn["curve_lam_norms"])
    plot_training_curves(histories, out / "training_curves")
    write_curve_series(histories, layout.results / "plots" / "curves", setting=setting)
    readme = results_readme(pd.read_csv(layout.tables / "method_comparison.csv"),
                            (layout.tables / "method_comparison.md").read_text(encoding="utf-8"), points,
                            drawn["cutoff"], curve_setting=setting, curve_lam_norms=drawn["curve_lam_norms"],
                            profile=params["profile"], folder=layout.results.name)
    write_atomic(layout.results / "README.md", readme)


def claims(params: dict, layout: Layout) -> None:
    """The paper's claims, each judged on paired per-seed differences (`pipeline.verdicts`): tables/claims."""
    table = claim_table(pd.read_csv(layout.tables / "seed_scores.csv"), pd.read_csv(layout.tables / "tradeoff_points.csv"),
                        pd.read_csv(layout.artifacts / "grid" / "points.csv"), params["settings"])
    write_table(table, layout.tables / "claims", floatfmt=".3g")


def run_profile(params: dict, layout: Layout) -> None:
    """Every step in the order the DVC stages run them: one profile end to end."""
    check(params, layout)
    split(params, layout)
    tune_wd(params, layout)
    for kind in PENALTIES:
        train(params, layout, kind)
    grid(params, layout)
    ann2snn(params, layout)
    score(params, layout)
    figures(params, layout)
