"""The paper's qualitative claims, each tested on paired per-seed differences with a stated rule.

Every comparison pairs two quantities measured on the same setting and seed (and grid row), as
`a − b` oriented so that a positive difference is what the paper claims. The verdict of a
*directional* claim ("A beats B") comes from a two-sided one-sample t-test of the differences
against 0 at level `ALPHA`: *holds* when significant with a positive mean, *does not hold* when
significant with a negative mean, else *inconclusive at this scale*. A *no-effect* claim ("B_BN has
no notable effect") *holds* when the mean difference is not significant and smaller in size than its
margin, *does not hold* when it is significant and at least the margin, else inconclusive. An AUC
comparison is judged at every cutoff P, and its verdict is the common one, inconclusive where the
cutoffs disagree.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import spearmanr, ttest_1samp

from pipeline.config import RunConfig
from pipeline.penalties import PENALTIES

__all__ = ["ALPHA", "HOLDS", "INCONCLUSIVE", "MARGINS", "NOT_HOLDS", "claim_table", "verdict"]

ALPHA = 0.05
HOLDS, NOT_HOLDS, INCONCLUSIVE = "holds", "does not hold", "inconclusive at this scale"
MARGINS = {"test_accuracy": 0.02, "energy_ratio": 0.05}  # a "notable" effect: 2 accuracy points, 5 % energy


@dataclass(frozen=True)
class _Comparison:
    claim: str
    comparison: str
    metric: str
    differences: np.ndarray
    no_effect: bool = False


def verdict(differences: Sequence[float], no_effect: bool = False, margin: float = 0.0) -> tuple[str, float]:
    """The verdict on paired differences (positive = as claimed) and the t-test's two-sided p-value
    (NaN when there are fewer than 2 differences or they are all 0; 0 when they are all one non-zero value)."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if d.size < 2 or not np.any(d != 0):
        p = float("nan")
    elif np.ptp(d) == 0:  # every pair differs by the same non-zero amount: t is infinite
        p = 0.0
    else:
        p = float(ttest_1samp(d, 0.0).pvalue)
    significant = bool(p < ALPHA)
    mean = float(d.mean()) if d.size else float("nan")
    if no_effect:
        if d.size >= 2 and not significant and abs(mean) < margin:
            return HOLDS, p
        return (NOT_HOLDS if significant and abs(mean) >= margin else INCONCLUSIVE), p
    if not significant:
        return INCONCLUSIVE, p
    return (HOLDS if mean > 0 else NOT_HOLDS), p


def _auc_pairs(per_seed: pd.DataFrame, cutoff: str, a: dict, b: dict) -> np.ndarray:
    """AUC(cutoff) of curve `a` minus that of curve `b`, paired by setting and seed (curves selected by
    column values, e.g. {"method": "syn", "p": 1.0})."""
    def pick(select: dict) -> pd.Series:
        rows = per_seed
        for column, value in select.items():
            rows = rows[rows[column] == value]
        return rows.set_index(["setting", "seed"])[f"auc_{cutoff}"]
    joined = pd.concat([pick(a).rename("a"), pick(b).rename("b")], axis=1, join="inner")
    return (joined["a"] - joined["b"]).to_numpy(float)


def _best_other(per_seed: pd.DataFrame, p: float) -> pd.DataFrame:
    """Per setting and seed, the larger AUC (at each cutoff) of the penalties other than Ω_syn at `p`, as
    rows of a method `other`."""
    others = per_seed[(per_seed["method"].isin([k for k in PENALTIES if k != "syn"])) & (per_seed["p"] == p)]
    aucs = [c for c in per_seed.columns if c.startswith("auc_")]
    return others.groupby(["setting", "seed"], as_index=False)[aucs].max().assign(method="other", p=p)


def _auc_comparisons(per_seed: pd.DataFrame, cutoffs: Sequence[str], settings: Sequence[dict]) -> list[tuple]:
    """(claim, comparison, {cutoff: differences}) of every claim measured on the per-seed AUCs."""
    syn, total, balance = (PENALTIES[k].symbol for k in ("syn", "total", "balance"))
    rows = []
    ps = sorted(per_seed.loc[per_seed["method"].isin(PENALTIES), "p"].unique())
    for p in ps:
        ordering = f"Ω ordering at p = {p:g}: {syn} > {total} > {balance}"
        rows.append((ordering, f"AUC {syn} − {total}",
                     {c: _auc_pairs(per_seed, c, {"method": "syn", "p": p}, {"method": "total", "p": p})
                      for c in cutoffs}))
        rows.append((ordering, f"AUC {total} − {balance}",
                     {c: _auc_pairs(per_seed, c, {"method": "total", "p": p}, {"method": "balance", "p": p})
                      for c in cutoffs}))
    if len(ps) > 1:
        for key in PENALTIES:
            rows.append((f"p = {ps[0]:g} beats p = {ps[1]:g}", f"AUC {PENALTIES[key].symbol} p={ps[0]:g} − p={ps[1]:g}",
                         {c: _auc_pairs(per_seed, c, {"method": key, "p": ps[0]}, {"method": key, "p": ps[1]})
                          for c in cutoffs}))
    with_best = pd.concat([per_seed, _best_other(per_seed, ps[0])], ignore_index=True)
    by_optimizer: dict[str, list[dict]] = {}
    for setting in settings:
        name, optimizer = setting["name"], setting.get("optimizer", RunConfig.optimizer)
        claim = (f"{syn} leads with the {setting.get('surrogate', RunConfig.surrogate)} surrogate (Adam)"
                 if optimizer == "adam" else f"{syn} leads with optimiser {optimizer}")
        leads = {c: _auc_pairs(with_best, c, {"setting": name, "method": "syn", "p": ps[0]},
                               {"setting": name, "method": "other", "p": ps[0]}) for c in cutoffs}
        by_optimizer.setdefault(optimizer, []).append(leads)
        rows.append((claim, f"AUC {syn} − best other Ω, p = {ps[0]:g}, {name}", leads))
    for optimizer, per_setting in by_optimizer.items():
        if len(per_setting) > 1:  # independence from the surrogate: every surrogate's pairs together
            rows.append((f"{syn} leads whatever the surrogate ({optimizer}, pooled)",
                         f"AUC {syn} − best other Ω, p = {ps[0]:g}, the {len(per_setting)} {optimizer} settings",
                         {c: np.concatenate([leads[c] for leads in per_setting]) for c in cutoffs}))
    for T in sorted(per_seed.loc[per_seed["method"] == "ann2snn", "T"].unique()):
        rows.append((f"direct training beats conversion (T = {T})", f"AUC {syn} p={ps[0]:g} − ann2snn T={T}",
                     {c: _auc_pairs(per_seed, c, {"method": "syn", "p": ps[0]}, {"method": "ann2snn", "T": T})
                      for c in cutoffs}))
    return rows


def _lambda_comparisons(points: pd.DataFrame) -> list[_Comparison]:
    """λ' controls the trade-off: per penalty curve and seed, −Spearman ρ of λ' with energy and accuracy."""
    runs = points[points["method"].isin(PENALTIES) & ~points["diverged"].astype(bool)]
    rho = {"energy_ratio": [], "test_accuracy": []}
    for _, curve in runs.groupby(["setting", "method", "p", "seed"]):
        for column in rho:
            if curve["lam_norm"].nunique() > 1 and curve[column].nunique() > 1:
                rho[column].append(-spearmanr(curve["lam_norm"], curve[column]).statistic)
    claim = "λ' controls the trade-off"
    return [_Comparison(claim, "−Spearman ρ(λ', energy ratio) per curve and seed", "ρ", np.array(rho["energy_ratio"])),
            _Comparison(claim, "−Spearman ρ(λ', test accuracy) per curve and seed", "ρ",
                        np.array(rho["test_accuracy"]))]


def _grid_pairs(grid: pd.DataFrame, vary: str, rows: pd.Series, column: str, high_minus_low: bool) -> np.ndarray:
    """`column` at the largest minus the smallest value of grid key `vary` (or the reverse), paired by the
    other keys and the seed, over the grid rows selected by `rows`."""
    keys = [k for k in ("setting", "lam", "weight_decay", "bn_decay", "seed") if k != vary]
    low, high = grid[vary].min(), grid[vary].max()
    table = grid[rows].pivot_table(index=keys, columns=vary, values=column)
    if low not in table.columns or high not in table.columns:
        return np.empty(0)
    difference = (table[high] - table[low]) if high_minus_low else (table[low] - table[high])
    return difference.dropna().to_numpy(float)


def _grid_comparisons(grid: pd.DataFrame) -> list[_Comparison]:
    """Sec. 4.2: weight decay with Ω_syn (λ > 0), and B_BN (where λ_WD > 0, the only rows it touches)."""
    grid = grid[~grid["diverged"].astype(bool)]
    penalised, decayed = grid["lam"] > 0, grid["weight_decay"] > 0
    wd, bn = "weight decay with Ω_syn (λ > 0, B_BN = 0)", "B_BN has no notable effect (λ_WD > 0)"
    no_bn = grid["bn_decay"] == 0
    return [
        _Comparison(wd, "energy ratio at λ_WD = 0 − at λ_WD > 0", "energy_ratio",
                    _grid_pairs(grid, "weight_decay", penalised & no_bn, "energy_ratio", False)),
        _Comparison(wd, "test accuracy at λ_WD > 0 − at λ_WD = 0 (no notable loss)", "test_accuracy",
                    _grid_pairs(grid, "weight_decay", penalised & no_bn, "test_accuracy", True), no_effect=True),
        _Comparison(bn, "test accuracy at B_BN = 1 − at B_BN = 0", "test_accuracy",
                    _grid_pairs(grid, "bn_decay", decayed, "test_accuracy", True), no_effect=True),
        _Comparison(bn, "energy ratio at B_BN = 1 − at B_BN = 0", "energy_ratio",
                    _grid_pairs(grid, "bn_decay", decayed, "energy_ratio", True), no_effect=True),
    ]


def _row(claim: str, comparison: str, metric: str, differences: np.ndarray, no_effect: bool) -> dict:
    d = differences[np.isfinite(differences)]
    margin = MARGINS.get(metric, 0.0)
    outcome, p = verdict(d, no_effect, margin)
    return {"claim": claim, "comparison": comparison, "metric": metric, "rule": f"abs(mean) < {margin:g}" if no_effect
            else "mean > 0", "n": int(d.size), "mean": float(d.mean()) if d.size else np.nan,
            "sd": float(d.std(ddof=1)) if d.size > 1 else np.nan, "n_positive": int((d > 0).sum()), "p_value": p,
            "verdict": outcome}


def claim_table(per_seed: pd.DataFrame, points: pd.DataFrame, grid: pd.DataFrame, settings: Sequence[dict]
                ) -> pd.DataFrame:
    """One row per comparison behind one of the paper's claims: its paired differences' n, mean, sd, how
    many are positive, the t-test p-value and the verdict (module docstring); AUC comparisons one row per
    cutoff, and a row "AUC(all cutoffs)" with their common verdict.

    `per_seed` is `scoring.score_curves(..., by_seed=True)`, `points` the trade-off run table, `grid` the
    Sec. 4.2 grid's run table, `settings` the profile's settings (their optimiser and surrogate name the
    independence claims).
    """
    cutoffs = [c.removeprefix("auc_") for c in per_seed.columns if c.startswith("auc_")]
    rows = []
    for claim, comparison, by_cutoff in _auc_comparisons(per_seed, cutoffs, settings):
        judged = [_row(claim, comparison, f"AUC({c})", by_cutoff[c], False) for c in cutoffs]
        common = {r["verdict"] for r in judged}
        rows += judged
        rows.append({"claim": claim, "comparison": comparison, "metric": "AUC(all cutoffs)", "rule": "same at each",
                     "n": judged[0]["n"], "verdict": common.pop() if len(common) == 1 else INCONCLUSIVE})
    for c in (*_lambda_comparisons(points), *_grid_comparisons(grid)):
        rows.append(_row(c.claim, c.comparison, c.metric, c.differences, c.no_effect))
    return pd.DataFrame(rows, columns=["claim", "comparison", "metric", "rule", "n", "mean", "sd", "n_positive",
                                       "p_value", "verdict"])
