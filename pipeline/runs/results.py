"""Gathering the stages' run tables into the published results (spec §6).

The training stages each leave `artifacts/<stage>/points.csv` (one row per
run) and `runs/<run id>/` products; this module joins them into the tables
the paper prints, the headline metrics and the per-series files `dvc plots`
draws.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import pandas as pd

from pipeline.fileio import write_atomic
from pipeline.penalties import PENALTIES
from pipeline.rundir import HISTORY
from pipeline.runs.plans import diverged_baselines, warn_skipped
from pipeline.scoring import curve_key, split_curves
from pipeline.train import HISTORY_COLUMNS

__all__ = ["POINT_COLUMNS", "SKIPPED_NOTE", "curve_histories", "diverged_baselines", "headline", "note_skipped",
           "tradeoff_points", "warn_skipped", "write_curve_series", "write_plot_series"]

log = logging.getLogger(__name__)

POINT_COLUMNS = ["setting", "method", "penalty", "p", "lam_norm", "seed", "T", "test_accuracy", "energy_ratio",
                 "energy_pj", "rate_mean", "rate_sum", "dead_rate", "diverged"]
SKIPPED_NOTE = "baseline diverged at every λ_WD: energy ratios undefined, curves not scored"


def note_skipped(table: pd.DataFrame, skipped: list[str]) -> pd.DataFrame:
    """`table` with one row per skipped setting and a `note` column saying why it has no curves."""
    if not skipped:
        return table
    notes = pd.DataFrame({"setting": skipped, "note": SKIPPED_NOTE})
    noted = pd.concat([table.assign(note=""), notes], ignore_index=True)
    text = [c for c in noted.columns if not pd.api.types.is_numeric_dtype(noted[c])]
    return noted.fillna({c: "—" for c in text})


def tradeoff_points(artifacts: Path, baselines: dict[str, dict]) -> pd.DataFrame:
    """Every trade-off run: the tuned baselines, the three penalties' grids and the ann2snn rows.

    A setting whose baseline diverged (`diverged_baselines`) keeps its rows, with NaN energy
    ratios and a `note` column saying why.
    """
    tune = pd.read_csv(artifacts / "tune_wd" / "points.csv")
    tuned = tune[[baselines[s]["weight_decay"] == wd for s, wd in zip(tune["setting"], tune["weight_decay"])]]
    parts = [tuned, *(pd.read_csv(p) for p in sorted((artifacts / "train").glob("*/points.csv"))),
             pd.read_csv(artifacts / "ann2snn" / "points.csv")]
    points = pd.concat(parts, ignore_index=True)
    points = points[POINT_COLUMNS + [c for c in points.columns if c not in POINT_COLUMNS]]
    skipped = points["setting"].isin(diverged_baselines(baselines))
    if skipped.any():
        points = points.assign(note=skipped.map({True: SKIPPED_NOTE, False: ""}))
        points.loc[skipped, "energy_ratio"] = math.nan
    return points


def headline(scores: pd.DataFrame, baselines: dict[str, dict], summary: pd.DataFrame | None = None) -> dict:
    """The DVC metrics, short enough for `dvc exp show`: per setting, the baseline and each curve's AUCs.

    Keys: `baseline.acc` (test accuracy, %), `baseline.energy_uj` (E_SNN, µJ per image) and
    `<curve>.auc<P>` (%, all seeds pooled into one curve), the curve named by `scoring.curve_key`
    without its p when the penalty has one p only (`syn.auc70`; `syn_p2.auc70` beside `syn_p1.auc70`
    when both are trained). With a `summary` (`scoring.seed_summary`) of more than one seed, also
    `<curve>.auc<P>_mean` and `<curve>.auc<P>_sd` over the seeds' own curves.
    With one setting these sit at the top; with several, under each setting's name.
    The full score table is `tables/tradeoff_scores.csv`.
    """
    cutoffs = [c.removeprefix("auc_") for c in scores.columns if c.startswith("auc_")]
    ps_per_method = scores.groupby("method")["p"].nunique()
    seeds = summary is not None and (summary["n_seeds"] > 1).any()
    spread = summary.set_index(["setting", "label"]) if seeds else None
    metrics: dict[str, dict] = {}
    for setting, base in baselines.items():
        metrics[setting] = {"baseline": {"acc": round(100 * base["test_accuracy"], 2),
                                         "energy_uj": round(base["energy_pj"] / 1e6, 4)}}
    for _, row in scores.iterrows():
        key = curve_key(row["method"], row["p"], row["T"], with_p=ps_per_method[row["method"]] > 1)
        curve = {f"auc{c}": _rounded(row[f"auc_{c}"]) for c in cutoffs}
        if seeds:
            own = spread.loc[(row["setting"], row["label"])]
            curve |= {f"auc{c}_{stat}": _rounded(own[f"auc_{c}_{stat}"]) for c in cutoffs for stat in ("mean", "sd")}
        metrics[row["setting"]][key] = curve
    return next(iter(metrics.values())) if len(metrics) == 1 else metrics


def _rounded(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 2)


def write_plot_series(points: pd.DataFrame, out_dir: Path) -> None:
    """One CSV per setting for `dvc plots` (one plot each): its baseline and every curve's valid runs.

    Column `series` names the curve ("Ω_syn p=1", "ann2snn T=5", "baseline"; the
    plot's colour), rows are in the paper's method order, then λ' (the order a
    curve's points are joined in), then seed.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    columns = ["setting", "series", "lam_norm", "seed", "energy_ratio", "test_accuracy"]
    valid = ~points["diverged"].astype(bool)
    parts = [points[(points["method"] == "baseline") & valid].assign(series="baseline")]
    for curve in split_curves(points):
        rows = points[(points["setting"] == curve.setting) & (points["method"] == curve.method)
                      & (points["T"] == curve.T) & valid]
        if curve.method != "ann2snn":
            rows = rows[rows["p"] == curve.p]
        parts.append(rows.sort_values(["lam_norm", "seed"]).assign(series=curve.label))
    series = pd.concat(parts, ignore_index=True)[columns]
    for setting, rows in series.groupby("setting", sort=True):
        write_atomic(out_dir / f"{setting}.csv", rows.to_csv(index=False))


def curve_histories(artifacts: Path, baselines: dict[str, dict], lam_norms: list[float]
                    ) -> dict[str, pd.DataFrame]:
    """Per-epoch histories of the first setting's tuned baseline and Ω_syn runs at `lam_norms` (first seed, p).

    A run without a history (it diverged in epoch 1) gets an empty history, which the figure
    shows as a legend entry only; all such runs are named in one warning line.
    """
    setting = next(iter(baselines))
    absent = []

    def first_seed(stage: str) -> pd.DataFrame:
        points = pd.read_csv(artifacts / stage / "points.csv")
        points = points[points["setting"] == setting]
        return points[points["seed"] == points["seed"].min()]

    def history(stage: str, row: pd.Series, label: str) -> pd.DataFrame:
        path = artifacts / stage / "runs" / row["run_id"] / HISTORY
        if path.is_file():
            return pd.read_csv(path)
        absent.append(f"{label} ({'diverged in epoch 1' if row['diverged'] else f'no {path}'})")
        return pd.DataFrame(columns=HISTORY_COLUMNS)

    base = first_seed("tune_wd")
    base = base[base["weight_decay"] == baselines[setting]["weight_decay"]]
    histories = {"baseline": history("tune_wd", base.iloc[0], "baseline")}
    syn = first_seed("train/syn")
    syn = syn[(syn["p"] == syn["p"].min()) & syn["lam_norm"].isin(lam_norms)]
    for _, row in syn.sort_values("lam_norm").iterrows():
        label = f"{PENALTIES['syn'].symbol} λ'={row['lam_norm']:g}"
        histories[label] = history("train/syn", row, label)
    if absent:
        log.warning("warning: no training curve for %s; shown in the legend only", ", ".join(absent))
    return histories


def write_curve_series(histories: dict[str, pd.DataFrame], out_dir: Path, setting: str) -> None:
    """`histories` (of `curve_histories`) as one CSV for `dvc plots`, `out_dir/<setting>.csv`, one line per run.

    Columns: setting, run (the history's label, the plot's colour), then the history's own columns.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [history.assign(setting=setting, run=label) for label, history in histories.items()
            if not history.empty]  # a run that finished no epoch: nothing to draw
    if rows:
        table = pd.concat(rows, ignore_index=True)
        table = table[["setting", "run", *(c for c in table.columns if c not in ("setting", "run"))]]
        write_atomic(out_dir / f"{setting}.csv", table.to_csv(index=False))
