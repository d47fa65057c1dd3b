"""Ours beside the paper's Table 4 (pipeline/paper.py): the right curve is matched to each paper row, the
differences and ranks follow, and only the paper's setting gets a comparison."""
import math

import pandas as pd

from pipeline.paper import TABLE_4, paper_comparison, paper_comparison_markdown

SETTING = {"name": "cnn7-fmnist-adam-s3nn", "model": "cnn7", "dataset": "fashion_mnist", "optimizer": "adam",
           "surrogate": "s3nn"}


def _scores(shift: float) -> pd.DataFrame:
    rows = [{"setting": SETTING["name"], "method": m, "p": p, "T": T, "neuron": "multi" if m == "ann2snn" else None,
             "protocol": "ramp" if m == "ann2snn" else None, "auc_70": a70 + shift, "auc_50": a50 + shift}
            for (m, p, T), (a70, a50) in TABLE_4.items()]
    # a per-intensity conversion curve and a single-spike one must not be taken for the paper's
    rows += [{**rows[-1], "protocol": "per_intensity", "auc_70": 0.0}, {**rows[-1], "neuron": "single", "auc_70": 0.0}]
    return pd.DataFrame(rows)


def test_each_paper_curve_meets_ours_with_the_difference_and_ranks():
    table = paper_comparison(_scores(shift=-2.5), [SETTING, {**SETTING, "name": "other", "dataset": "digits"}])
    assert list(table["curve"]) == ["Ω_syn p=1", "Ω_syn p=2", "Ω_total p=1", "Ω_total p=2", "Ω_balance p=1",
                                    "Ω_balance p=2", "ANN2SNN T=1", "ANN2SNN T=5", "ANN2SNN T=10"]
    assert set(table["setting"]) == {SETTING["name"]}  # the digits setting is not the paper's
    assert table["paper AUC(70)"].tolist() == [v[0] for v in TABLE_4.values()]
    assert all(math.isclose(d, -2.5) for d in table["difference AUC(70)"])
    assert table.loc[table["curve"] == "ANN2SNN T=10", "ours AUC(70)"].item() == 37.93 - 2.5
    assert table["paper rank AUC(70)"].tolist() == table["ours rank AUC(70)"].tolist()
    assert table.loc[table["curve"] == "Ω_syn p=1", "paper rank AUC(70)"].item() == 1  # 68.02, the largest
    text = paper_comparison_markdown(table, {SETTING["name"]: {"test_accuracy": 0.8557}})
    assert f"`{SETTING['name']}`: the tuned baseline's test accuracy 85.57 %, the paper's 92.02 %." in text
    assert "AUC(70): rank correlation of the nine curves with the paper's ρ = 1.00; 9 of 9 curves" in text


def test_a_swapped_pair_lowers_the_rank_correlation():
    scores = _scores(shift=0.0)
    first, second = scores.index[:2]  # Ω_syn p=1 (68.02, rank 1) and p=2 (61.62, rank 3) trade places
    scores.loc[[first, second], "auc_70"] = scores.loc[[second, first], "auc_70"].to_numpy()
    text = paper_comparison_markdown(paper_comparison(scores, [SETTING]), {SETTING["name"]: {"test_accuracy": 0.9}})
    assert "AUC(70): rank correlation of the nine curves with the paper's ρ = 0.93; 7 of 9 curves" in text  # 1 − 6·8/720
    assert paper_comparison(scores, [{**SETTING, "optimizer": "msgd"}]).empty
