"""The README's section on the paper's claims, rendered from the claims table (`verdicts.claim_table`, the
committed tables/claims.csv), so the section is generated, never copied by hand:

    python -m pipeline.claims_readme [results/claims/tables/claims.csv] [--alpha 0.05]
"""
from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import pandas as pd

from pipeline.verdicts import ALPHA, HOLDS, INCONCLUSIVE, NOT_HOLDS, SAME_AT_EACH, UNTESTED, combine

__all__ = ["claim_verdicts", "claims_section", "main"]

_UNIT_WORDS = {"seeds": "seeds", "setting means": "settings", "interleaved rounds": "rounds"}


def _deciding(rows: pd.DataFrame) -> pd.DataFrame:
    """A claim's rows that decide it: its summaries and the tested rows no summary of its own stands for."""
    summarised = set(rows.loc[rows["rule"] == SAME_AT_EACH, "comparison"])
    return rows[(rows["rule"] == SAME_AT_EACH) | ~rows["comparison"].isin(summarised)]


def _number(value: float) -> str:
    return f"{value:+.3g}" if math.isfinite(value) else "—"


def _evidence(rows: pd.DataFrame) -> str:
    """A comparison's tested rows as "comparison (n unit, rule): metric mean [CI], p raw → Holm; …"."""
    first = rows.iloc[0]
    rule = "" if first["rule"].startswith("two-sided") else f", {first['rule']}"
    metrics = ", ".join(f"{row['metric']} {_number(row['mean'])} [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"
                        f" p = {row['p_value']:.2g} → {row['p_holm']:.2g}" for _, row in rows.iterrows())
    return f"{first['comparison']} ({int(first['n'])} {first['unit']}{rule}): {metrics}"


def claim_verdicts(table: pd.DataFrame) -> pd.DataFrame:
    """One row per claim, in the table's order: claim, verdict (every deciding row must hold; see
    `verdicts.combine`), post_hoc (any of its rows), n_needed and unit (the most units any of its
    inconclusive deciding rows needs), note (why it is not tested)."""
    out = []
    for claim, rows in table.groupby("claim", sort=False):
        deciding = _deciding(rows)
        untested = (rows["verdict"] == UNTESTED).all()
        verdict = UNTESTED if untested else combine(list(deciding["verdict"]), every=True)
        open_rows = rows[(rows["verdict"] == INCONCLUSIVE) & rows["n_needed"].notna()]
        worst = open_rows.loc[open_rows["n_needed"].idxmax()] if len(open_rows) else None
        out.append({"claim": claim, "verdict": verdict, "post_hoc": bool(rows["post_hoc"].astype(bool).any()),
                    "n_needed": worst["n_needed"] if worst is not None else math.nan,
                    "unit": worst["unit"] if worst is not None else "",
                    "note": "; ".join(filter(None, rows["note"].fillna("")))})
    return pd.DataFrame(out, columns=["claim", "verdict", "post_hoc", "n_needed", "unit", "note"])


def _verdict_cell(claim: pd.Series) -> str:
    if claim["verdict"] == UNTESTED:
        return f"{UNTESTED}: {claim['note']}"
    cell = f"**{claim['verdict']}**"
    if claim["verdict"] == INCONCLUSIVE and math.isfinite(claim["n_needed"]):
        cell += f" (decisive at the effect seen with ≈ {claim['n_needed']:.0f} {_UNIT_WORDS[claim['unit']]})"
    elif claim["verdict"] == INCONCLUSIVE and claim["n_needed"] == math.inf:
        cell += " (not decisive at the effect seen with any feasible number)"
    return cell + (" †" if claim["post_hoc"] else "")


def claims_section(table: pd.DataFrame, alpha: float = ALPHA) -> str:
    """The Markdown of the README's claims section: the rule in brief, the counts, and one line per claim
    with its evidence (every tested row: mean, confidence interval, n and unit, raw and Holm p) and verdict."""
    claims = claim_verdicts(table)
    tests = int(table["p_value"].notna().sum())
    counts = claims["verdict"].value_counts()
    lines = [
        f"The verdicts are `results/claims/tables/claims.md`, decided by the rule in `docs/claims.md`: each "
        f"comparison's paired differences reduced to the unit of replication its claim is about (a setting's "
        f"seeds; the settings' means for a claim about several settings; interleaved rounds for timing), a "
        f"two-sided t test for a directional claim, two one-sided tests against the stated margin for a "
        f"no-effect claim, and Holm's correction over all {tests} tests of the table at α = {alpha:g}. Of "
        f"{len(claims)} claims, {counts.get(HOLDS, 0)} hold, {counts.get(NOT_HOLDS, 0)} do not hold, "
        f"{counts.get(INCONCLUSIVE, 0)} are inconclusive at this scale and {counts.get(UNTESTED, 0)} are not "
        f"tested here. † marks a claim with a row written after its data had been read (post hoc). Evidence: "
        f"per comparison, its n and unit of replication, then per metric the mean difference (positive = as the "
        f"paper claims), its 95 % confidence interval and p before → after Holm.",
        "",
        "| the paper's claim | evidence | verdict |",
        "|---|---|---|",
    ]
    for claim in claims.itertuples(index=False):
        rows = table[table["claim"] == claim.claim]
        tested = rows[rows["p_value"].notna()]
        evidence = "; ".join([_evidence(group) for _, group in tested.groupby("comparison", sort=False)]
                             or list(rows.loc[rows["verdict"] != UNTESTED, "comparison"])) or "—"
        lines.append(f"| {claim.claim} | {evidence} | {_verdict_cell(pd.Series(claim._asdict()))} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Print the claims section of the claims table at the given path."""
    parser = argparse.ArgumentParser(description="Print the README's claims section from a claims table (CSV).")
    parser.add_argument("table", nargs="?", default="results/claims/tables/claims.csv")
    parser.add_argument("--alpha", type=float, default=ALPHA, help=f"the table's α (default {ALPHA})")
    args = parser.parse_args(argv)
    sys.stdout.write(claims_section(pd.read_csv(args.table), args.alpha))
    return 0


if __name__ == "__main__":
    sys.exit(main())
