"""The paper's own trade-off scores, and ours beside them (`paper_comparison`).

`TABLE_4` holds the AUC(70) and AUC(50) the paper reports (Table 4; its ANN→SNN rows are Table 20's) for
CNN7 on Fashion-MNIST with Adam and the s3nn surrogate: the nine curves Ω_syn, Ω_total, Ω_balance at
p = 1 and 2, and the converted QReLU network at T = 1, 5, 10 (the paper's protocol: one network whose
penalty intensity rises, `ann2snn.protocol: ramp`, multi-spike IF neurons).
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd
from scipy.stats import spearmanr

from pipeline.penalties import label

__all__ = ["BASELINE_ACCURACY", "PAPER_SETTING", "TABLE_4", "paper_comparison", "paper_comparison_markdown"]

# what a setting must be for the paper's numbers to apply: CNN7, Fashion-MNIST, Adam, s3nn (Table 6's first row)
PAPER_SETTING = {"model": "cnn7", "dataset": "fashion_mnist", "optimizer": "adam", "surrogate": "s3nn"}
# (method, p, T) → (AUC(70), AUC(50)), in %
TABLE_4: dict[tuple[str, float, int], tuple[float, float]] = {
    ("syn", 1.0, 1): (68.02, 79.60), ("syn", 2.0, 1): (61.62, 72.69),
    ("total", 1.0, 1): (63.30, 76.05), ("total", 2.0, 1): (55.16, 64.63),
    ("balance", 1.0, 1): (54.23, 67.16), ("balance", 2.0, 1): (31.47, 42.94),
    ("ann2snn", 1.0, 1): (53.51, 67.80), ("ann2snn", 1.0, 5): (47.40, 63.17), ("ann2snn", 1.0, 10): (37.93, 56.30),
}
BASELINE_ACCURACY = 92.02  # the paper's CNN7 / Fashion-MNIST / Adam / s3nn SNN without penalty, test accuracy in %
_CONVERSION = {"neuron": "multi", "protocol": "ramp"}  # the paper's conversion curves


def _curve_name(method: str, p: float, T: int) -> str:
    return f"ANN2SNN T={T}" if method == "ann2snn" else label(method, p)


def _ours(scores: pd.DataFrame, setting: str, method: str, p: float, T: int, cutoff: int) -> float:
    rows = scores[(scores["setting"] == setting) & (scores["method"] == method) & (scores["T"] == T)]
    if method == "ann2snn":
        for column, value in _CONVERSION.items():
            if column in rows.columns:
                rows = rows[rows[column].fillna(value) == value]
    else:
        rows = rows[rows["p"] == p]
    return float(rows[f"auc_{cutoff}"].iloc[0]) if len(rows) else float("nan")


def paper_comparison(scores: pd.DataFrame, settings: Sequence[dict]) -> pd.DataFrame:
    """For every setting that is the paper's CNN7 / Fashion-MNIST / Adam / s3nn (`PAPER_SETTING`) and each of
    Table 4's nine curves: the paper's AUC(70) and AUC(50), ours (`scores`: `scoring.score_curves`, seeds
    pooled, as the paper scores), their difference, and each curve's rank among the nine (1: the largest
    AUC) in the paper and here. Empty when no setting is the paper's."""
    rows = []
    for setting in settings:
        if any(setting.get(key) != value for key, value in PAPER_SETTING.items()):
            continue
        for (method, p, T), paper in TABLE_4.items():
            row = {"setting": setting["name"], "curve": _curve_name(method, p, T)}
            for cutoff, theirs in zip((70, 50), paper):
                ours = _ours(scores, setting["name"], method, p, T, cutoff)
                row |= {f"paper AUC({cutoff})": theirs, f"ours AUC({cutoff})": ours,
                        f"difference AUC({cutoff})": ours - theirs}
            rows.append(row)
    table = pd.DataFrame(rows)
    for cutoff in (70, 50):
        for who in ("paper", "ours"):
            if len(table):
                table[f"{who} rank AUC({cutoff})"] = table.groupby("setting")[f"{who} AUC({cutoff})"].rank(
                    ascending=False, method="min")
    return table


def paper_comparison_markdown(table: pd.DataFrame, baselines: dict[str, dict]) -> str:
    """The comparison as Markdown, with one line per setting on its tuned baseline's test accuracy beside
    the paper's (`baselines`: the tune_wd stage's record) and one per setting and cutoff on whether the two
    orderings of the nine curves agree (Spearman's ρ between the paper's AUCs and ours)."""
    shown = table.drop(columns=[c for c in table.columns if " rank " in c])
    lines = [shown.to_markdown(index=False, floatfmt=".2f"), ""]
    for setting, rows in table.groupby("setting", sort=False):
        lines.append(f"- `{setting}`: the tuned baseline's test accuracy {100 * baselines[setting]['test_accuracy']:.2f} %, "
                     f"the paper's {BASELINE_ACCURACY:.2f} %.")
        for cutoff in (70, 50):
            ours = rows[f"ours AUC({cutoff})"]
            rho = spearmanr(rows[f"paper AUC({cutoff})"], ours).statistic if ours.notna().sum() > 2 else float("nan")
            same = (rows[f"paper rank AUC({cutoff})"] == rows[f"ours rank AUC({cutoff})"]).sum()
            lines.append(f"- `{setting}`, AUC({cutoff}): rank correlation of the nine curves with the paper's "
                         f"ρ = {rho:.2f}; {same} of {len(rows)} curves hold the paper's rank.")
    return "\n".join(lines) + "\n"
