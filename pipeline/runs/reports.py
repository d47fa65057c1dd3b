"""The pipeline's reporting steps, one function per DVC stage (score, figures, claims), each reading the
training steps' artifacts under a profile's `Layout` and writing its results; and `run_profile`, every
step in order (the `claims` stage).
"""
from __future__ import annotations

import json

import pandas as pd

from pipeline.accounting import accounting
from pipeline.figures import plot_layer_shares, plot_seed_spread, plot_tradeoff, plot_training_curves, results_readme
from pipeline.fileio import write_atomic
from pipeline.penalties import PENALTIES
from pipeline.runs import steps
from pipeline.runs.results import (curve_histories, headline, note_skipped, tradeoff_points, warn_skipped,
                                   write_curve_series, write_plot_series)
from pipeline.runs.stage import Layout
from pipeline.scoring import score_curves, seed_summary
from pipeline.tables import comparison_best, grid_table, method_comparison, time_table, write_table
from pipeline.verdicts import claim_table

__all__ = ["claims", "figures", "run_profile", "score"]


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
    steps.check(params, layout)
    steps.split(params, layout)
    steps.tune_wd(params, layout)
    for kind in PENALTIES:
        steps.train(params, layout, kind)
    steps.grid(params, layout)
    steps.ann2snn(params, layout)
    score(params, layout)
    figures(params, layout)
