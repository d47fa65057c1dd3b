"""Scoring an accuracy–energy trade-off curve: AUC(P), Spearman(P), MI(P).

Spec §8 (paper App. A.4, Alg. 1). A curve is every run of one method: points
(x = E_SNN / E_baseline, y = test accuracy as a fraction). The cutoff P (70 or
50, in percent) drops the points with y < P/100 before any of the metrics.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.feature_selection import mutual_info_regression
from sklearn.metrics import mutual_info_score

from pipeline.penalties import ENERGY_PENALTIES, PENALTIES, label

__all__ = [
    "CONVERSION_DEFAULTS",
    "METHOD_ORDER",
    "Curve",
    "auc",
    "conversion_keys",
    "curve_key",
    "envelope",
    "mi",
    "mi_knn",
    "score_columns",
    "score_curves",
    "seed_statistics",
    "seed_summary",
    "spearman",
    "split_curves",
    "valid_runs",
]

#: Curve methods in the paper's order: the penalties (by key), then conversion; `baseline` rows are never a curve.
METHOD_ORDER = (*PENALTIES, *ENERGY_PENALTIES, "ann2snn")
#: What a conversion curve is keyed by besides T, and the value a run table without the column means: the
#: multi-spike neuron and the paper's protocol, `ramp` (one network trained with rising penalty intensity,
#: each intensity's snapshot converted), as params.yaml's `ann2snn` section defaults to; `per_intensity` is
#: one network trained per intensity (spec §7), `single` the one-spike IF neuron. Labels name only the others.
CONVERSION_DEFAULTS = {"neuron": "multi", "protocol": "ramp"}
_CURVE_KEYS = ["setting", "method", "p", "T", *CONVERSION_DEFAULTS]
_REQUIRED = ["setting", "method", "p", "T", "test_accuracy", "energy_ratio", "diverged"]
_MI_KNN_SEED = 0


def _kept(energy: Sequence[float], accuracy: Sequence[float], cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """The points at or above the cutoff, y ≥ P/100 (spec §8, first step for all metrics)."""
    x = np.asarray(energy, dtype=float).ravel()
    y = np.asarray(accuracy, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"energy and accuracy differ in length ({x.size} vs {y.size}); pass one value per run")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("energy and accuracy must be finite; drop diverged runs first (score_curves does)")
    if (x < 0).any() or (y < 0).any() or (y > 1).any():
        raise ValueError("energy ratios must be ≥ 0 and accuracies fractions in [0, 1]; divide percentages by 100")
    if not 0 <= cutoff < 100:
        raise ValueError(f"cutoff is a percentage in [0, 100), got {cutoff}")
    keep = y >= cutoff / 100
    return x[keep], y[keep]


def envelope(energy: Sequence[float], accuracy: Sequence[float], cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """The monotone curve c(x) of Alg. 1 (spec §8), as the vertices of a polyline.

    Steps: drop y < P/100; sort by x; keep x ≤ 1; prepend (x_1, 0); append
    (1, max y); keep the points whose y is ≥ every earlier y.

    * "max y" is the largest accuracy among the kept points with x ≤ 1: a run
      that spends more than the baseline's energy must not lift the curve.
    * Ties in x are ordered by decreasing y, so at equal energy the envelope
      keeps the higher accuracy (a lower one at the same x is never a record).
    * When no point survives (all below the cutoff or all at x > 1) the
      envelope is empty: two empty arrays.

    The first vertex is the prepended (x_1, 0): c(x) = 0 for x < x_1 and rises
    vertically at x_1.
    """
    x, y = _kept(energy, accuracy, cutoff)
    order = np.lexsort((-y, x))
    x, y = x[order], y[order]
    inside = x <= 1
    x, y = x[inside], y[inside]
    if x.size == 0:
        return np.empty(0), np.empty(0)
    xs = np.concatenate([[x[0]], x, [1.0]])
    ys = np.concatenate([[0.0], y, [y.max()]])
    record = ys >= np.maximum.accumulate(ys)
    return xs[record], ys[record]


def _positive_part_integral(xs: np.ndarray, ys: np.ndarray, level: float) -> float:
    """∫ max(c(x) − level, 0) dx, exactly, for the polyline c through (xs, ys).

    A segment that crosses the level contributes only the triangle above it.
    """
    g0, g1 = ys[:-1] - level, ys[1:] - level
    width = np.diff(xs)
    above = (g0 >= 0) & (g1 >= 0)
    crossing = (g0 < 0) != (g1 < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        triangle = width * np.maximum(g0, g1) ** 2 / (2 * np.abs(g1 - g0))
    area = np.where(above, width * (g0 + g1) / 2, np.where(crossing, triangle, 0.0))
    return float(area.sum())


def auc(energy: Sequence[float], accuracy: Sequence[float], cutoff: float) -> float:
    """AUC(P) of Alg. 1 (spec §8), in percent.

    ∫_0^1 max(c(x) − P', 0) dx / (1 − P') · 100 with P' = P/100 and c the
    `envelope` (see it for the "max y" reading and ties). 100 means the full
    accuracy at zero energy. Returns 0.0 when no point survives the cutoff
    with x ≤ 1: an empty curve encloses no area.
    """
    xs, ys = envelope(energy, accuracy, cutoff)
    if xs.size == 0:
        return 0.0
    level = cutoff / 100
    return 100 * _positive_part_integral(xs, ys, level) / (1 - level)


def spearman(energy: Sequence[float], accuracy: Sequence[float], cutoff: float) -> float:
    """Spearman(P) (spec §8): Spearman's ρ between energy and accuracy of the kept points.

    Kept means y ≥ P/100; unlike AUC, points with x > 1 count. Returns NaN
    (no warning) when fewer than 2 points are kept or either coordinate is
    constant, where ρ is undefined.
    """
    x, y = _kept(energy, accuracy, cutoff)
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def _codes(values: np.ndarray) -> np.ndarray:
    """Each distinct value as an integer label (MI is invariant to relabelling)."""
    return np.unique(values, return_inverse=True)[1]


def mi(energy: Sequence[float], accuracy: Sequence[float], cutoff: float) -> float:
    """MI(P) as the paper computed it (spec §8), in nats.

    `sklearn.metrics.mutual_info_score` on the raw values of the kept points
    (y ≥ P/100), each distinct value a class; it equals ln(n) when all n
    points are distinct, and repeated values lower it. The values are passed
    as integer codes of the same classes, which gives the identical number
    without scikit-learn's continuous-label warning. 0.0 for fewer than 2 points.
    """
    x, y = _kept(energy, accuracy, cutoff)
    if x.size < 2:
        return 0.0
    return float(mutual_info_score(_codes(x), _codes(y)))


def mi_knn(energy: Sequence[float], accuracy: Sequence[float], cutoff: float) -> float:
    """A continuous MI(P) estimate (spec §8), in nats: k-NN `mutual_info_regression`.

    Kept points as for `mi`; n_neighbors = min(3, n − 1) and a fixed
    random_state, so the value is reproducible. 0.0 for fewer than 2 points.
    """
    x, y = _kept(energy, accuracy, cutoff)
    if x.size < 2:
        return 0.0
    estimate = mutual_info_regression(
        x[:, None], y, n_neighbors=min(3, x.size - 1), random_state=_MI_KNN_SEED
    )
    return float(estimate[0])


def valid_runs(runs: pd.DataFrame) -> pd.Series:
    """True for the runs that count: not diverged, with a finite accuracy and energy ratio."""
    finite = np.isfinite(runs["test_accuracy"].to_numpy(float)) & np.isfinite(runs["energy_ratio"].to_numpy(float))
    return ~runs["diverged"].eq(True) & finite


def conversion_keys(points: pd.DataFrame) -> pd.DataFrame:
    """`points` with the columns of `CONVERSION_DEFAULTS` on every row: a conversion run's missing value is
    the default, a penalty run's is NaN (it has no conversion neuron or protocol)."""
    conversion = points["method"].eq("ann2snn")
    keyed = points.copy()
    for column, default in CONVERSION_DEFAULTS.items():
        values = keyed[column] if column in keyed.columns else pd.Series(np.nan, index=keyed.index, dtype=object)
        keyed[column] = values.astype(object).where(~conversion | values.notna(), default).where(conversion)
    return keyed


def _conversion_words(neuron: str, protocol: str) -> list[str]:
    """"ann2snn", then the neuron and protocol where they are not the defaults."""
    return ["ann2snn", *(value for value, default in zip((neuron, protocol), CONVERSION_DEFAULTS.values())
                         if value != default)]


@dataclass(frozen=True)
class Curve:
    """One trade-off curve: the valid runs of (setting, method, p, T, neuron, protocol) (spec §6, Sec. 4.3),
    all seeds pooled as the paper scores them, or one seed's (`seed` set). `neuron` and `protocol` are a
    conversion curve's (`CONVERSION_DEFAULTS`), None for a penalty's."""

    setting: str
    method: str
    p: float
    T: int
    energy: np.ndarray
    accuracy: np.ndarray
    n_dropped: int
    seed: int | None = None
    neuron: str | None = None
    protocol: str | None = None

    @property
    def label(self) -> str:
        """"Ω_syn p=1" for a penalty; "ann2snn T=5" for the default conversion, "ann2snn single ramp T=5"
        with the neuron and protocol that differ from `CONVERSION_DEFAULTS`."""
        if self.method == "ann2snn":
            return " ".join([*_conversion_words(self.neuron, self.protocol), f"T={self.T}"])
        return label(self.method, self.p)


def curve_key(method: str, p: float, T: int, with_p: bool = True, *, neuron: str = CONVERSION_DEFAULTS["neuron"],
              protocol: str = CONVERSION_DEFAULTS["protocol"]) -> str:
    """A curve's name in metric keys: "syn_p1" ("syn" without p) for a penalty curve, "ann2snn_T5" for the
    default conversion, "ann2snn_single_ramp_T5" with the neuron and protocol that differ from the defaults."""
    if method == "ann2snn":
        return "_".join([*_conversion_words(neuron, protocol), f"T{int(T)}"])
    return f"{method}_p{p:g}" if with_p else method


def split_curves(points: pd.DataFrame, by_seed: bool = False) -> list[Curve]:
    """Group result rows into curves by (setting, method, p, T, neuron, protocol) — and seed, `by_seed` — in
    the paper's method order.

    `baseline` rows are not a curve; conversion rows without a neuron or protocol get the defaults
    (`conversion_keys`). Rows with diverged=True or a NaN (or
    infinite) accuracy/energy are dropped and counted in `Curve.n_dropped`. An empty
    frame gives no curves.
    """
    if points.empty:
        return []
    missing = [c for c in _REQUIRED if c not in points.columns]
    if missing:
        raise ValueError(f"points lack columns {missing}; expected the run table of spec §6")
    unknown = set(points["method"]) - set(METHOD_ORDER) - {"baseline"}
    if unknown:
        raise ValueError(f"unknown method(s) {sorted(unknown)}; expected one of {[*METHOD_ORDER, 'baseline']}")
    keys = [*_CURVE_KEYS, "seed"] if by_seed else _CURVE_KEYS
    rows = conversion_keys(points[points["method"] != "baseline"]).sort_values(
        keys, key=lambda col: col.map(METHOD_ORDER.index) if col.name == "method" else col, kind="stable"
    )
    curves = []
    for (setting, method, p, T, neuron, protocol, *seed), group in rows.groupby(keys, dropna=False, sort=False):
        valid = valid_runs(group)
        curves.append(Curve(
            setting=str(setting), method=str(method), p=float(p), T=int(T),
            energy=group.loc[valid, "energy_ratio"].to_numpy(float),
            accuracy=group.loc[valid, "test_accuracy"].to_numpy(float),
            n_dropped=int((~valid).sum()), seed=int(seed[0]) if seed else None,
            neuron=None if pd.isna(neuron) else str(neuron), protocol=None if pd.isna(protocol) else str(protocol),
        ))
    return curves


_METRICS = {"auc": auc, "spearman": spearman, "mi": mi, "mi_knn": mi_knn}


def _metric_columns(cutoffs: Sequence[int]) -> list[str]:
    return [f"{name}_{cutoff:g}" for name in _METRICS for cutoff in cutoffs]


def score_columns(cutoffs: Sequence[int] = (70, 50), by_seed: bool = False) -> list[str]:
    """Column names of `score_curves`' output for these cutoffs."""
    return [*_CURVE_KEYS, *(["seed"] if by_seed else []), "label", "n_points", "n_dropped",
            *_metric_columns(cutoffs)]


def score_curves(points: pd.DataFrame, cutoffs: Sequence[int] = (70, 50), by_seed: bool = False) -> pd.DataFrame:
    """Score every curve of a run table (spec §8; paper Tables 4, 12–20).

    `points` has one row per run (columns setting, method, penalty, p,
    lam_norm, seed, T, test_accuracy, energy_ratio, … diverged, and for
    conversion runs neuron and protocol; see `split_curves`). One output row
    per curve, keyed by setting, method, p, T, neuron, protocol (NaN for a
    penalty curve): its label, n_points (valid
    runs), n_dropped (diverged or NaN runs), and auc_P, spearman_P, mi_P,
    mi_knn_P for each cutoff P. An empty table gives an empty frame with these
    columns. `by_seed`: one row per curve and seed (column `seed`), each seed's runs scored alone.
    """
    rows = []
    for curve in split_curves(points, by_seed):
        row = {
            "setting": curve.setting, "method": curve.method, "p": curve.p, "T": curve.T,
            "neuron": curve.neuron, "protocol": curve.protocol, **({"seed": curve.seed} if by_seed else {}),
            "label": curve.label, "n_points": curve.energy.size, "n_dropped": curve.n_dropped,
        }
        for name, metric in _METRICS.items():
            for cutoff in cutoffs:
                row[f"{name}_{cutoff:g}"] = metric(curve.energy, curve.accuracy, cutoff)
        rows.append(row)
    return pd.DataFrame(rows, columns=score_columns(cutoffs, by_seed))


def seed_statistics(frame: pd.DataFrame, keys: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Per group of `keys` (one row per seed in `frame`): `n_seeds`, then the mean and sample sd (ddof = 1;
    NaN for one seed) of each of `columns` as `<column>_mean`, `<column>_sd`; groups in first-seen order,
    NaN values left out of their column's mean and sd."""
    grouped = frame.groupby(list(keys), sort=False, dropna=False)  # a penalty curve's conversion keys are NaN
    stats = grouped[list(columns)].agg(["mean", "std"])
    stats.columns = [f"{column}_{'sd' if stat == 'std' else stat}" for column, stat in stats.columns]
    return pd.concat([grouped.size().rename("n_seeds"), stats], axis=1).reset_index()


def seed_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample sd over seeds of every metric of every curve (`seed_statistics`).

    `per_seed` is `score_curves(..., by_seed=True)`. One row per curve: setting, method, p, T, neuron, protocol, label,
    n_seeds, then `<metric>_mean` and `<metric>_sd` for each metric column (a seed whose metric is NaN,
    e.g. Spearman of fewer than 2 kept points, is left out of that metric's mean and sd).
    """
    metrics = [c for c in per_seed.columns if re.fullmatch(rf"({'|'.join(_METRICS)})_[\d.]+", c)]
    return seed_statistics(per_seed, [*_CURVE_KEYS, "label"], metrics)
