"""The statistics behind the claims table: one-sample t tests on paired differences, the two one-sided tests
(TOST) against a margin, Holm's step-down correction, and how many units a test needs to decide.

Every function takes the differences of one comparison, one value per unit of replication, oriented so that
a positive value is what the paper claims. A *directional* test asks whether the mean differs from 0
(two-sided). A *margin* test asks whether the mean lies inside a band (equivalence: −m < δ < m, by TOST;
non-inferiority: δ > −m, by its lower test alone) or, when the estimate lies outside the band, whether the
mean lies outside it (the same one-sided tests turned round; for equivalence both sides, so its p-value is
doubled like a two-sided test's). Either way one p-value decides the row, and that p-value is what Holm
corrects.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import nct
from scipy.stats import t as student_t

__all__ = ["BANDS", "MarginTest", "TTest", "holm", "margin_test", "n_needed", "t_test"]

#: The bands a margin test can ask for: "equivalence" is −m < δ < m, "non-inferiority" is δ > −m.
BANDS = ("equivalence", "non-inferiority")


@dataclass(frozen=True)
class TTest:
    """A one-sample t test of differences against 0: their n, mean, sd, the (1 − α) confidence interval of
    the mean and the two-sided p-value (NaN below 2 units or when every difference is 0; 0 when they are all
    one non-zero value, where t is infinite)."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    p_value: float


def _finite(differences: Sequence[float]) -> np.ndarray:
    d = np.asarray(differences, dtype=float).ravel()
    return d[np.isfinite(d)]


def t_test(differences: Sequence[float], alpha: float = 0.05) -> TTest:
    """The one-sample t test of `differences` (NaNs left out) against 0, with the (1 − `alpha`) interval."""
    d = _finite(differences)
    n = int(d.size)
    if n < 2:
        mean = float(d[0]) if n else float("nan")
        return TTest(n, mean, float("nan"), float("nan"), float("nan"), float("nan"))
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    half = float(student_t.ppf(1 - alpha / 2, n - 1)) * sd / np.sqrt(n)
    if sd == 0:
        p = float("nan") if mean == 0 else 0.0
    else:
        p = float(2 * student_t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))
    return TTest(n, mean, sd, mean - half, mean + half, p)


def _one_sided(d: np.ndarray, bound: float, above: bool) -> float:
    """p of the one-sided t test that the mean of `d` lies above (or below) `bound`."""
    mean, sd, n = float(d.mean()), float(d.std(ddof=1)), d.size
    if sd == 0:
        return 0.0 if (mean > bound if above else mean < bound) else 1.0
    t = (mean - bound) / (sd / np.sqrt(n))
    return float(student_t.sf(t, n - 1) if above else student_t.cdf(t, n - 1))


@dataclass(frozen=True)
class MarginTest:
    """A margin test's outcome: `inside` says which question was asked (True: is the mean inside the band,
    False: is it outside), `p_value` its p-value (NaN below 2 units)."""

    inside: bool
    p_value: float


def margin_test(differences: Sequence[float], margin: float, band: str = "equivalence") -> MarginTest:
    """Test whether the mean of `differences` lies inside `band` of `margin` (`BANDS`) when the estimate is
    inside it, else whether it lies outside.

    Inside, equivalence: TOST, the larger p of "δ > −m" and "δ < m"; non-inferiority: "δ > −m". Outside,
    equivalence: "δ > m" or "δ < −m", the smaller one-sided p doubled (capped at 1); non-inferiority:
    "δ < −m". An estimate on the band's edge counts as outside.
    """
    if band not in BANDS:
        raise ValueError(f"unknown band {band!r}; allowed: {', '.join(BANDS)}")
    if margin <= 0:
        raise ValueError(f"a margin must be positive, got {margin}")
    d = _finite(differences)
    mean = float(d.mean()) if d.size else float("nan")
    inside = bool(-margin < mean < margin) if band == "equivalence" else bool(mean > -margin)
    if d.size < 2:
        return MarginTest(inside, float("nan"))
    lower = _one_sided(d, -margin, above=inside)  # inside: δ > −m; outside: δ < −m
    if band == "non-inferiority":
        return MarginTest(inside, lower)
    upper = _one_sided(d, margin, above=not inside)  # inside: δ < m; outside: δ > m
    return MarginTest(inside, max(lower, upper) if inside else min(1.0, 2 * min(lower, upper)))


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order; NaNs stay NaN and are not counted as tests.

    The i-th smallest of m p-values becomes max over j ≤ i of min(1, (m − j + 1)·p_(j)); rejecting where the
    adjusted p is below α controls the family-wise error rate at α.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(np.isfinite(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def _power(n: np.ndarray, mean: float, sd: float, level: float, margin: float | None, band: str) -> np.ndarray:
    """Power at each n of the test `margin_test` (or `t_test` when `margin` is None) would run, if the true
    mean and sd were these (TOST: the lower bound P(A) + P(B) − 1 of P(A and B)). A lower tail
    P(T < −c; δ) is computed as P(T > c; −δ): scipy's noncentral t cdf turns NaN far in the tail."""
    df = n - 1

    def below(crit: np.ndarray, centre: np.ndarray) -> np.ndarray:
        return nct.sf(crit, df, -centre)

    root = np.sqrt(n) / sd
    if margin is None:
        crit = student_t.ppf(1 - level / 2, df)
        return nct.sf(crit, df, mean * root) + below(crit, mean * root)
    low, high = (mean + margin) * root, (mean - margin) * root  # the one-sided statistics' centres
    if band == "non-inferiority":
        crit = student_t.ppf(1 - level, df)
        return nct.sf(crit, df, low) if mean > -margin else below(crit, low)
    if -margin < mean < margin:
        crit = student_t.ppf(1 - level, df)
        return np.maximum(0.0, nct.sf(crit, df, low) + below(crit, high) - 1)
    crit = student_t.ppf(1 - level / 2, df)
    return nct.sf(crit, df, high) + below(crit, low)


def n_needed(mean: float, sd: float, level: float, margin: float | None = None, band: str = "equivalence",
             power: float = 0.8, most: int = 1000) -> float:
    """The fewest units (≥ 2) at which the row's test reaches `power` at `level` if the true mean and sd
    were `mean` and `sd`: the directional t test when `margin` is None, else the margin test `margin_test`
    would run. NaN when `sd` is NaN or the estimate cannot decide (a directional mean of 0); inf when even
    `most` units fall short; 2 when `sd` is 0.
    """
    if not (np.isfinite(mean) and np.isfinite(sd)) or (margin is None and mean == 0):
        return float("nan")
    if sd == 0:
        return 2.0
    n = np.arange(2, most + 1, dtype=float)
    enough = np.flatnonzero(_power(n, mean, sd, level, margin, band) >= power)
    return float(n[enough[0]]) if enough.size else float("inf")
