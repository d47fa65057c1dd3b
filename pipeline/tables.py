"""Result tables in the paper's layouts, written as CSV (raw numbers) and Markdown (spec §6).

* `method_comparison` — trade-off scores per curve (paper Tables 4, 12–20).
* `grid_table` — the Sec. 4.2 λ × λ_WD × B_BN grid (paper Tables 2, 3, 8–11).
* `time_table` — wall time per epoch relative to no penalty (paper Table 7).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.fileio import write_atomic
from pipeline.penalties import ENERGY_PENALTIES, PENALTIES
from pipeline.scoring import valid_runs

__all__ = ["comparison_best", "grid_table", "method_comparison", "time_table", "write_table"]

_MISSING = "—"
_PENALTY_ORDER = ("none", *PENALTIES, *ENERGY_PENALTIES)
_GRID_KEYS = ["setting", "lam", "weight_decay", "bn_decay"]
_GRID_METRICS = ["test_accuracy", "energy_ratio", "dead_rate", "rate_mean", "rate_sum"]
_COMPARISON_METRICS = {"auc": "AUC", "spearman": "Spearman", "mi": "MI", "mi_knn": "MI-kNN"}


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}")


def _best_mask(df: pd.DataFrame, best: dict[str, str]) -> pd.DataFrame:
    """True where a cell holds its column's best value within its setting (all ties)."""
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    groups = df.groupby("setting", sort=False).groups.values() if "setting" in df.columns else [df.index]
    for column, direction in best.items():
        if direction not in ("max", "min"):
            raise ValueError(f"best[{column!r}] must be 'max' or 'min', got {direction!r}")
        if column not in df.columns:
            raise ValueError(f"best names column {column!r}, which the table lacks")
        if not pd.api.types.is_numeric_dtype(df[column]):
            raise ValueError(f"best marks numeric columns only; {column!r} holds {df[column].dtype} values")
        for index in groups:
            values = df.loc[index, column]
            target = values.max() if direction == "max" else values.min()
            mask.loc[index, column] = values.eq(target)
    return mask


def _display(df: pd.DataFrame, best: dict[str, str], floatfmt: str) -> pd.DataFrame:
    """Text cells for Markdown: floats with `floatfmt`, NaN as "—", best values in bold."""
    shown = df.astype(object)
    for column in df.columns:
        if pd.api.types.is_float_dtype(df[column]):
            shown[column] = [_MISSING if np.isnan(v) else format(v, floatfmt) for v in df[column]]
    shown = shown.astype(str)
    mask = _best_mask(df, best)
    return shown.where(~mask, "**" + shown + "**")


def write_table(
    df: pd.DataFrame, path_stem: Path, best: dict[str, str] | None = None, floatfmt: str = ".2f"
) -> tuple[Path, Path]:
    """Write `path_stem.csv` (raw values) and `path_stem.md` (formatted); return both paths.

    `best` maps a numeric column to "max" or "min"; the Markdown puts that
    column's best value in bold, per setting when the table has a `setting`
    column (ties all bold, NaN never). Floats are shown with `floatfmt`.
    """
    path_stem = Path(path_stem)
    csv_path = path_stem.parent / f"{path_stem.name}.csv"
    md_path = path_stem.parent / f"{path_stem.name}.md"
    write_atomic(csv_path, df.to_csv(index=False))
    shown = _display(df, best or {}, floatfmt)
    write_atomic(md_path, shown.to_markdown(index=False, disable_numparse=True) + "\n")
    return csv_path, md_path


def method_comparison(scores: pd.DataFrame, summary: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per setting, one row per curve with AUC(P), Spearman(P), MI(P) (paper Tables 4, 12–20).

    `scores` is `scoring.score_curves`' output; the cutoffs are read from its
    `auc_P` columns, in their order. Columns: setting, curve (the label),
    AUC(P)…, Spearman(P)…, MI(P)… as in the paper (all seeds' runs pooled into one curve), then
    MI-kNN(P)…, the continuous estimate spec §8 asks to report beside the paper's MI. With a
    `summary` (`scoring.seed_summary`) of more than one seed, then "AUC(P) seeds" and
    "Spearman(P) seeds": each seed's curve scored alone, "mean ± sd".
    """
    cutoffs = [m.group(1) for c in scores.columns if (m := re.fullmatch(r"auc_(\d+)", c))]
    if not cutoffs:
        raise ValueError("scores have no auc_P column; pass scoring.score_curves' output")
    renames = {
        f"{key}_{cutoff}": f"{name}({cutoff})" for key, name in _COMPARISON_METRICS.items() for cutoff in cutoffs
    }
    _require(scores, ["setting", "label", *renames], "scores (expected scoring.score_curves output)")
    table = scores[["setting", "label", *renames]].rename(columns={"label": "curve", **renames})
    if summary is not None and (summary["n_seeds"] > 1).any():
        spread = summary.set_index(["setting", "label"])
        index = pd.MultiIndex.from_frame(scores[["setting", "label"]])
        for key in ("auc", "spearman"):
            for cutoff in cutoffs:
                mean = spread[f"{key}_{cutoff}_mean"].reindex(index).to_numpy(float)
                sd = spread[f"{key}_{cutoff}_sd"].reindex(index).to_numpy(float)
                table[f"{_COMPARISON_METRICS[key]}({cutoff}) seeds"] = [_plus_minus(m, d) for m, d in zip(mean, sd)]
    return table.reset_index(drop=True)


def _plus_minus(mean: float, sd: float) -> str:
    """"mean ± sd" with three decimals ("mean" alone when sd is NaN, "—" when both are)."""
    if np.isnan(mean):
        return _MISSING
    return f"{mean:.3f}" if np.isnan(sd) else f"{mean:.3f} ± {sd:.3f}"


def comparison_best(table: pd.DataFrame) -> dict[str, str]:
    """The `best` argument of `write_table` for a `method_comparison` table: every metric "max".

    Higher AUC is better by construction. For Spearman and MI we follow the
    paper, which bolds the largest value too (a curve whose accuracy rises
    consistently with energy); note the paper's MI is ln(#distinct points),
    so its largest value only means most runs above the cutoff.
    """
    return {column: "max" for column in table.columns
            if column not in ("setting", "curve") and pd.api.types.is_numeric_dtype(table[column])}


def _mean_std(fractions: pd.Series) -> str:
    """"mean ± std" in percent over seeds (sample std, ddof = 1); one seed shows the mean alone."""
    percent = 100 * fractions.dropna().to_numpy(float)
    if percent.size == 0:
        return _MISSING
    if percent.size == 1:
        return f"{percent[0]:.2f}"
    return f"{percent.mean():.2f} ± {percent.std(ddof=1):.2f}"


def grid_table(grid_points: pd.DataFrame) -> pd.DataFrame:
    """The Sec. 4.2 grid (paper Tables 2, 3, 8–11): one row per (setting, λ, λ_WD, B_BN).

    Input: one row per run with setting, lam, weight_decay, bn_decay, seed,
    test_accuracy, energy_ratio, dead_rate, rate_mean, rate_sum (fractions),
    diverged. Each metric is shown as "mean ± std" in percent over the valid
    seeds, std being the sample std (ddof = 1); with one seed the mean stands
    alone, since a spread of one value is not 0 but unknown; with none, "—".
    n_seeds counts the valid runs, n_diverged the diverged (or NaN
    accuracy/energy) ones, which enter no mean.
    """
    _require(grid_points, [*_GRID_KEYS, *_GRID_METRICS, "diverged"], "grid_points")
    columns = [*_GRID_KEYS, *(f"{m} [%]" for m in _GRID_METRICS), "n_seeds", "n_diverged"]
    rows = []
    valid = valid_runs(grid_points)
    for key, group in grid_points.groupby(_GRID_KEYS, dropna=False, sort=True):
        ok = group[valid.loc[group.index]]
        rows.append([*key, *(_mean_std(ok[m]) for m in _GRID_METRICS), len(ok), len(group) - len(ok)])
    return pd.DataFrame(rows, columns=columns)


def time_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Wall time per epoch with each penalty relative to no penalty (paper Table 7).

    Input rows: setting, penalty ("none", "syn", "total", "balance"), p,
    epoch_seconds. Output per (setting, penalty, p): the mean epoch_seconds,
    n_runs, and ratio_to_none = that mean / the mean over the setting's
    "none" rows (1.0 for "none" itself; NaN when the setting has no "none" run).
    """
    _require(runs, ["setting", "penalty", "p", "epoch_seconds"], "runs")
    unknown = set(runs["penalty"]) - set(_PENALTY_ORDER)
    if unknown:
        raise ValueError(f"unknown penalty(ies) {sorted(unknown)}; expected one of {list(_PENALTY_ORDER)}")
    keys = ["setting", "penalty", "p"]
    table = (
        runs.groupby(keys, dropna=False, sort=False)["epoch_seconds"]
        .agg(epoch_seconds="mean", n_runs="size")
        .reset_index()
    )
    reference = runs[runs["penalty"] == "none"].groupby("setting")["epoch_seconds"].mean()
    table["ratio_to_none"] = table["epoch_seconds"] / table["setting"].map(reference)
    table = table.sort_values(
        keys, key=lambda col: col.map(_PENALTY_ORDER.index) if col.name == "penalty" else col, kind="stable"
    )
    return table[[*keys, "epoch_seconds", "ratio_to_none", "n_runs"]].reset_index(drop=True)
