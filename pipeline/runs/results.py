"""Gathering the stages' run tables into the published results (spec §6).

The training stages each leave `artifacts/<stage>/points.csv` (one row per
run) and `runs/<run id>/` products; this module joins them into the tables
the paper prints, the headline metrics and the per-series files `dvc plots`
draws.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd

from pipeline.penalties import PENALTIES
from pipeline.rundir import HISTORY
from pipeline.scoring import curve_key, split_curves

__all__ = ["POINT_COLUMNS", "curve_histories", "headline", "tradeoff_points", "write_curve_series",
           "write_plot_series"]

POINT_COLUMNS = ["setting", "method", "penalty", "p", "lam_norm", "seed", "T", "test_accuracy", "energy_ratio",
                 "energy_pj", "rate_mean", "rate_sum", "dead_rate", "diverged"]


def tradeoff_points(artifacts: Path, baselines: dict[str, dict]) -> pd.DataFrame:
    """Every trade-off run: the tuned baselines, the three penalties' grids and the ann2snn rows."""
    tune = pd.read_csv(artifacts / "tune_wd" / "points.csv")
    tuned = tune[[baselines[s]["weight_decay"] == wd for s, wd in zip(tune["setting"], tune["weight_decay"])]]
    parts = [tuned, *(pd.read_csv(p) for p in sorted((artifacts / "train").glob("*/points.csv"))),
             pd.read_csv(artifacts / "ann2snn" / "points.csv")]
    points = pd.concat(parts, ignore_index=True)
    return points[POINT_COLUMNS + [c for c in points.columns if c not in POINT_COLUMNS]]


def headline(scores: pd.DataFrame, baselines: dict[str, dict]) -> dict:
    """The DVC metrics, short enough for `dvc exp show`: per setting, the baseline and each curve's AUCs.

    Keys: `baseline.acc` (test accuracy, %), `baseline.energy_uj` (E_SNN, µJ per image) and
    `<curve>.auc<P>` (%), the curve named by `scoring.curve_key` without its p when the penalty
    has one p only (`syn.auc70`; `syn_p2.auc70` beside `syn_p1.auc70` when both are trained).
    With one setting these sit at the top; with several, under each setting's name.
    The full score table is `results/tables/tradeoff_scores.csv`.
    """
    cutoffs = [c.removeprefix("auc_") for c in scores.columns if c.startswith("auc_")]
    ps_per_method = scores.groupby("method")["p"].nunique()
    metrics: dict[str, dict] = {}
    for setting, base in baselines.items():
        metrics[setting] = {"baseline": {"acc": round(100 * base["test_accuracy"], 2),
                                         "energy_uj": round(base["energy_pj"] / 1e6, 4)}}
    for _, row in scores.iterrows():
        key = curve_key(row["method"], row["p"], row["T"], with_p=ps_per_method[row["method"]] > 1)
        metrics[row["setting"]][key] = {
            f"auc{c}": None if math.isnan(row[f"auc_{c}"]) else round(float(row[f"auc_{c}"]), 2) for c in cutoffs}
    return next(iter(metrics.values())) if len(metrics) == 1 else metrics


def write_plot_series(points: pd.DataFrame, out_dir: Path) -> None:
    """One CSV per trade-off series (`dvc plots` draws one line per file): each setting's baseline and curves."""
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["energy_ratio", "test_accuracy", "lam_norm", "seed"]
    baselines = points[points["method"] == "baseline"]
    for setting, rows in baselines.groupby("setting"):
        rows[columns].to_csv(out_dir / f"{setting}_baseline.csv", index=False)
    for curve in split_curves(points):
        rows = points[(points["setting"] == curve.setting) & (points["method"] == curve.method)
                      & (points["T"] == curve.T) & ~points["diverged"].astype(bool)]
        if curve.method != "ann2snn":
            rows = rows[rows["p"] == curve.p]
        name = curve.method if curve.method != "ann2snn" else f"ann2snn_T{curve.T}"
        suffix = "" if curve.method == "ann2snn" else f"_p{curve.p:g}"
        rows.sort_values("energy_ratio")[columns].to_csv(out_dir / f"{curve.setting}_{name}{suffix}.csv",
                                                         index=False)


def curve_histories(artifacts: Path, baselines: dict[str, dict], lam_norms: list[float]
                    ) -> dict[str, pd.DataFrame]:
    """Per-epoch histories of the first setting's tuned baseline and Ω_syn runs at `lam_norms` (first seed, p)."""
    setting = next(iter(baselines))

    def first_seed(stage: str) -> pd.DataFrame:
        points = pd.read_csv(artifacts / stage / "points.csv")
        points = points[points["setting"] == setting]
        return points[points["seed"] == points["seed"].min()]

    def history(stage: str, run_id: str) -> pd.DataFrame:
        return pd.read_csv(artifacts / stage / "runs" / run_id / HISTORY)

    base = first_seed("tune_wd")
    base = base[base["weight_decay"] == baselines[setting]["weight_decay"]]
    histories = {"baseline": history("tune_wd", base["run_id"].iloc[0])}
    syn = first_seed("train/syn")
    syn = syn[(syn["p"] == syn["p"].min()) & syn["lam_norm"].isin(lam_norms)]
    for _, row in syn.sort_values("lam_norm").iterrows():
        histories[f"{PENALTIES['syn'].symbol} λ'={row['lam_norm']:g}"] = history("train/syn", row["run_id"])
    return histories


def write_curve_series(histories: dict[str, pd.DataFrame], out_dir: Path) -> None:
    """One CSV per training-curve series for `dvc plots`, named in ASCII after its label."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for label, history in histories.items():
        name = re.sub(r"[^A-Za-z0-9.]+", "_", label.replace("Ω", "omega").replace("λ'", "lam")).strip("_")
        history.to_csv(out_dir / f"{name}.csv", index=False)
