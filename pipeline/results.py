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

from pipeline.scoring import PENALTY_SYMBOLS, split_curves

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
    """The top-level DVC metrics: each setting's baseline and every curve's scores."""
    metrics: dict[str, dict] = {}
    for setting, base in baselines.items():
        metrics[setting] = {"baseline": {k: base[k] for k in ("test_accuracy", "energy_pj", "weight_decay")}}
    score_columns = [c for c in scores.columns if c.split("_")[0] in ("auc", "spearman", "mi")]
    for _, row in scores.iterrows():
        key = row["label"].replace("Ω_", "omega_").replace(" ", "_").replace("=", "")
        metrics[row["setting"]][key] = {c: (None if math.isnan(row[c]) else float(row[c])) for c in score_columns}
    return metrics


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
        return pd.read_csv(artifacts / stage / "runs" / run_id / "history.csv")

    base = first_seed("tune_wd")
    base = base[base["weight_decay"] == baselines[setting]["weight_decay"]]
    histories = {"baseline": history("tune_wd", base["run_id"].iloc[0])}
    syn = first_seed("train/syn")
    syn = syn[(syn["p"] == syn["p"].min()) & syn["lam_norm"].isin(lam_norms)]
    for _, row in syn.sort_values("lam_norm").iterrows():
        histories[f"{PENALTY_SYMBOLS['omega_syn']} λ'={row['lam_norm']:g}"] = history("train/syn", row["run_id"])
    return histories


def write_curve_series(histories: dict[str, pd.DataFrame], out_dir: Path) -> None:
    """One CSV per training-curve series for `dvc plots`, named in ASCII after its label."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for label, history in histories.items():
        name = re.sub(r"[^A-Za-z0-9.]+", "_", label.replace("Ω", "omega").replace("λ'", "lam")).strip("_")
        history.to_csv(out_dir / f"{name}.csv", index=False)
