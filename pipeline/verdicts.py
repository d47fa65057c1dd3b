"""The paper's qualitative claims, each judged by one stated rule (docs/claims.md) on the comparisons of
`pipeline.comparisons`.

Each tested row has one p-value: a *directional* claim ("A beats B") the two-sided one-sample t test of its
differences against 0; a *no-effect* claim ("B_BN has no notable effect") the test against its margin
(`inference.margin_test`: TOST when the estimate lies inside the margin, the test that the effect lies
beyond it otherwise). Holm's step-down correction runs over every tested row of the table at level α, and
the verdict reads the adjusted p: a directional row *holds* when it is below α with a positive mean and
*does not hold* when below α with a negative one; a no-effect row *holds* when equivalence (or
non-inferiority) is shown and *does not hold* when the effect is shown to lie beyond the margin; all else is
*inconclusive at this scale*. A row of several cutoffs' rows takes their common verdict; a claim "for each
…" holds when every member holds and does not hold when one does not. An inconclusive row says how many
units of its kind would make its test decisive at the effect seen, with power `power` at the level α/m
that suffices whatever the other m − 1 tests do.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.comparisons import Comparison, Summary, comparisons
from pipeline.inference import holm, margin_test, n_needed, t_test

__all__ = ["ALPHA", "COLUMNS", "EVERY", "HOLDS", "INCONCLUSIVE", "MARGINS", "MIN_SEEDS", "NOT_HOLDS", "POWER",
           "SAME_AT_EACH", "UNTESTED", "claim_table", "combine", "verdict"]

ALPHA = 0.05
POWER = 0.8
#: The size of a notable effect per metric: 2 accuracy points, 0.05 of the baseline's energy, 5 % step time.
MARGINS = {"test_accuracy": 0.02, "energy_ratio": 0.05, "time_ratio": 0.05}
MIN_SEEDS = 3
HOLDS, NOT_HOLDS, INCONCLUSIVE = "holds", "does not hold", "inconclusive at this scale"
UNTESTED = "not tested here"
SAME_AT_EACH, EVERY = "same at each cutoff", "every member holds"
COLUMNS = ["claim", "comparison", "metric", "unit", "n", "mean", "sd", "ci_low", "ci_high", "n_positive", "rule",
           "p_value", "p_holm", "verdict", "post_hoc", "effect", "n_needed", "note"]


def verdict(p_adjusted: float, mean: float, alpha: float = ALPHA, inside: bool | None = None) -> str:
    """The verdict of one tested row from its Holm-adjusted p: directional when `inside` is None, else a
    margin test that asked whether the effect lies inside the margin (`inside`) or beyond it."""
    if not p_adjusted < alpha:
        return INCONCLUSIVE
    if inside is None:
        return HOLDS if mean > 0 else NOT_HOLDS
    return HOLDS if inside else NOT_HOLDS


def combine(verdicts: Sequence[str], every: bool) -> str:
    """The verdict of several rows: with `every`, holds when all hold and does not hold when any does not;
    else their common verdict, inconclusive where they differ."""
    if every:
        if NOT_HOLDS in verdicts:
            return NOT_HOLDS
        return HOLDS if verdicts and all(v == HOLDS for v in verdicts) else INCONCLUSIVE
    return verdicts[0] if len(set(verdicts)) == 1 else INCONCLUSIVE


def _tested(row: Comparison, alpha: float) -> dict:
    """The row's statistics and the p-value that decides it, before correction."""
    d = row.differences[np.isfinite(row.differences)]
    t = t_test(d, alpha)
    fields = {"claim": row.claim, "comparison": row.comparison, "metric": row.metric, "unit": row.unit, "n": t.n,
              "mean": t.mean, "sd": t.sd, "ci_low": t.ci_low, "ci_high": t.ci_high, "n_positive": int((d > 0).sum()),
              "post_hoc": row.post_hoc, "effect": t.mean / t.sd if t.sd > 0 else np.nan, "note": ""}
    if row.margin is None:
        return fields | {"rule": "two-sided t, mean > 0", "p_value": t.p_value, "inside": None}
    outcome = margin_test(d, row.margin, row.band)
    if row.band == "equivalence":
        rule = f"TOST, |mean| < {row.margin:g}" if outcome.inside else f"beyond, |mean| > {row.margin:g}"
    else:
        rule = (f"non-inferiority, mean > −{row.margin:g}" if outcome.inside
                else f"inferiority, mean < −{row.margin:g}")
    return fields | {"rule": rule, "p_value": outcome.p_value, "inside": outcome.inside}


def claim_table(per_seed: pd.DataFrame, points: pd.DataFrame, grid: pd.DataFrame | None, settings: Sequence[Mapping],
                *, timing: pd.DataFrame | None = None, alpha: float = ALPHA, margins: Mapping[str, float] | None = None,
                power: float = POWER) -> pd.DataFrame:
    """One row per comparison behind one of the paper's claims, in `COLUMNS` (docs/claims.md).

    Reads: `per_seed`, the per-seed scores (`scoring.score_curves(points, cutoffs, by_seed=True)`, the score
    step's tables/seed_scores.csv) of a profile with at least `MIN_SEEDS` seeds; `points`, the trade-off run
    table (tables/tradeoff_points.csv); `grid`, the Sec. 4.2 grid's run table (artifacts/<profile>/grid/
    points.csv; None or empty: its claims are noted untested); `settings`, the profile's settings (their
    model, optimiser and surrogate name the claims); `timing`, `comparisons.read_timing` of the committed
    bench/results/training_time.json (None: untested). `alpha`, `margins` (test_accuracy, energy_ratio,
    time_ratio; missing keys take `MARGINS`) and `power` are the profile's `claims` section.
    """
    seeds = per_seed["seed"].nunique() if len(per_seed) else 0
    if seeds < MIN_SEEDS:
        raise ValueError(f"the claims table needs at least {MIN_SEEDS} seeds per curve, got {seeds}; "
                         "give the profile's penalty.seeds more")
    rows = comparisons(per_seed, points, grid, settings, timing, {**MARGINS, **(margins or {})})
    tested = {id(row): _tested(row, alpha) for row in rows if isinstance(row, Comparison)}
    adjusted = holm([r["p_value"] for r in tested.values()])
    level = alpha / max(1, int(np.isfinite(adjusted).sum()))
    for fields, p_holm in zip(tested.values(), adjusted):
        fields["p_holm"] = p_holm
        fields["verdict"] = verdict(p_holm, fields["mean"], alpha, fields.pop("inside"))
    table, decided = [], {}
    for row in rows:
        if isinstance(row, Comparison):
            fields = tested[id(row)]
            if fields["verdict"] == INCONCLUSIVE:
                fields["n_needed"] = n_needed(fields["mean"], fields["sd"], level, row.margin, row.band, power)
        elif isinstance(row, Summary):
            fields = {"claim": row.claim, "comparison": row.comparison, "metric": row.metric,
                      "rule": EVERY if row.every else SAME_AT_EACH, "post_hoc": row.post_hoc, "note": "",
                      "verdict": combine([decided[id(m)] for m in row.members], row.every)}
        else:
            fields = {"claim": row.claim, "comparison": row.comparison, "verdict": UNTESTED, "note": row.note,
                      "post_hoc": False}
        decided[id(row)] = fields["verdict"]
        table.append(fields)
    return pd.DataFrame(table, columns=COLUMNS)
