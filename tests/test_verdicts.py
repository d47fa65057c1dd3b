"""The claims' verdicts: the stated rule on hand-worked differences, and the pairing of the comparisons."""
import math

import numpy as np
import pandas as pd
import pytest

from pipeline.verdicts import HOLDS, INCONCLUSIVE, NOT_HOLDS, claim_table, verdict

SETTINGS = [{"name": "a", "optimizer": "adam", "surrogate": "s3nn"},
            {"name": "m", "optimizer": "msgd", "surrogate": "s3nn"}]


def t_two_sided_p_df2(d: list[float]) -> float:
    """The two-sided p-value of a one-sample t-test on 3 values, by hand: with 2 degrees of freedom the
    t distribution's tail is closed-form, P(|T| > t) = 1 − t / √(t² + 2)."""
    mean = sum(d) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 2)
    t = abs(mean) / (sd / math.sqrt(3))
    return 1 - t / math.sqrt(t * t + 2)


@pytest.mark.parametrize("d,expected", [
    ([5.0, 6.0, 7.0], HOLDS),          # t = 10.4, p = 0.009
    ([-5.0, -6.0, -7.0], NOT_HOLDS),
    ([5.0, -1.0, 7.0], INCONCLUSIVE),  # p = 0.25
    ([1.0, 2.0], INCONCLUSIVE),        # two pairs: p = 0.20 at best
])
def test_directional_rule_and_p_value(d, expected):
    outcome, p = verdict(d)
    assert outcome == expected
    if len(d) == 3:
        assert p == pytest.approx(t_two_sided_p_df2(d))


def test_no_effect_rule():
    assert verdict([0.004, -0.003, 0.001], no_effect=True, margin=0.02)[0] == HOLDS
    assert verdict([0.05, 0.06, 0.055], no_effect=True, margin=0.02)[0] == NOT_HOLDS  # consistent, larger
    assert verdict([0.001, 0.0015, 0.0012], no_effect=True, margin=0.02)[0] == INCONCLUSIVE  # tiny but consistent
    assert verdict([0.0, 0.0, 0.0], no_effect=True, margin=0.02) [0] == HOLDS
    assert verdict([0.01], no_effect=True, margin=0.02)[0] == INCONCLUSIVE  # one pair shows nothing


def _per_seed(auc: dict) -> pd.DataFrame:
    """Per-seed scores: auc[(setting, method, p, T)] = three AUC(70) values (AUC(50) = the same + 10)."""
    rows = [{"setting": s, "method": m, "p": p, "T": T, "seed": seed, "auc_70": v, "auc_50": v + 10}
            for (s, m, p, T), values in auc.items() for seed, v in enumerate(values)]
    return pd.DataFrame(rows)


def _points() -> pd.DataFrame:
    rows = []
    for seed in range(3):
        for i, lam in enumerate([2.0, 8.0, 32.0]):
            rows.append({"setting": "a", "method": "syn", "p": 1.0, "seed": seed, "lam_norm": lam, "diverged": False,
                         "energy_ratio": 0.5 / (i + 1), "test_accuracy": 0.9 - 0.1 * i - 0.01 * seed})
    return pd.DataFrame(rows)


def _grid() -> pd.DataFrame:
    """λ ∈ {0, 1e-5} × λ_WD ∈ {0, 1e-4} × B_BN ∈ {0, 1} × 3 seeds: weight decay lowers the energy ratio by
    0.1 at λ > 0, B_BN moves nothing but noise."""
    rows = []
    for seed in range(3):
        for lam in (0.0, 1e-5):
            for wd in (0.0, 1e-4):
                for bn in (0, 1):
                    noise = (-1) ** (seed + bn) * 0.001 * (seed + 1) * bn
                    rows.append({"setting": "a", "lam": lam, "weight_decay": wd, "bn_decay": bn, "seed": seed,
                                 "diverged": False, "test_accuracy": 0.9 + noise,
                                 "energy_ratio": 1.0 - 0.3 * (lam > 0) - 0.1 * (wd > 0) * (lam > 0) + noise})
    return pd.DataFrame(rows)


def test_claim_table_pairs_by_setting_and_seed():
    per_seed = _per_seed({
        ("a", "syn", 1.0, 1): [60, 62, 61], ("a", "total", 1.0, 1): [50, 55, 52], ("a", "balance", 1.0, 1): [30, 20, 25],
        ("a", "syn", 2.0, 1): [50, 52, 49], ("a", "total", 2.0, 1): [50, 60, 40], ("a", "balance", 2.0, 1): [10, 11, 12],
        ("m", "syn", 1.0, 1): [40, 45, 42], ("m", "total", 1.0, 1): [44, 41, 43], ("m", "balance", 1.0, 1): [10, 12, 11],
        ("a", "ann2snn", 1.0, 1): [70, 71, 72], ("a", "ann2snn", 1.0, 5): [30, 31, 29],
    })
    table = claim_table(per_seed, _points(), _grid(), SETTINGS).set_index(["comparison", "metric"])

    def row(comparison, metric="AUC(70)"):
        return table.loc[(comparison, metric)]

    syn_total = row("AUC Ω_syn − Ω_total")
    assert isinstance(syn_total, pd.DataFrame) and len(syn_total) == 2  # one per p
    p1 = syn_total[syn_total["claim"].str.contains("p = 1")].iloc[0]
    assert p1["n"] == 6 and p1["mean"] == pytest.approx(np.mean([10, 7, 9, -4, 4, -1]))  # settings a and m
    assert row("AUC Ω_syn p=1 − p=2", "AUC(all cutoffs)")["verdict"] == HOLDS  # [10, 10, 12]
    assert row("AUC Ω_syn − best other Ω, p = 1, a")["mean"] == pytest.approx(np.mean([10, 7, 9]))
    m = row("AUC Ω_syn − best other Ω, p = 1, m")
    assert m["claim"] == "Ω_syn leads with optimiser msgd" and m["mean"] == pytest.approx(np.mean([-4, 4, -1]))
    assert m["verdict"] == INCONCLUSIVE
    assert "Ω_syn leads whatever the surrogate" not in set(table["claim"])  # one setting per optimiser: no pooling
    assert row("AUC Ω_syn p=1 − ann2snn T=1", "AUC(all cutoffs)")["verdict"] == NOT_HOLDS  # [-10, -9, -11]
    assert row("AUC Ω_syn p=1 − ann2snn T=5", "AUC(all cutoffs)")["verdict"] == HOLDS
    energy = row("−Spearman ρ(λ', energy ratio) per curve and seed", "ρ")
    assert energy["n"] == 3 and energy["mean"] == pytest.approx(1.0)  # energy falls with every λ' step
    wd = row("energy ratio at λ_WD = 0 − at λ_WD > 0", "energy_ratio")
    assert wd["n"] == 3 and wd["mean"] == pytest.approx(0.1) and wd["verdict"] == HOLDS
    bn = row("energy ratio at B_BN = 1 − at B_BN = 0", "energy_ratio")
    assert bn["n"] == 6 and bn["verdict"] == HOLDS  # λ ∈ {0, 1e-5} at λ_WD > 0, × 3 seeds; noise below the margin


def test_surrogates_of_one_optimiser_are_also_pooled():
    per_seed = _per_seed({
        ("a", "syn", 1.0, 1): [60, 62, 61], ("a", "total", 1.0, 1): [50, 55, 52], ("a", "balance", 1.0, 1): [30, 20, 25],
        ("b", "syn", 1.0, 1): [70, 71, 72], ("b", "total", 1.0, 1): [60, 66, 61], ("b", "balance", 1.0, 1): [65, 60, 70],
    })
    settings = [SETTINGS[0], {"name": "b", "optimizer": "adam", "surrogate": "linear"}]
    table = claim_table(per_seed, _points(), _grid(), settings)
    pooled = table[(table["claim"] == "Ω_syn leads whatever the surrogate (adam, pooled)")
                   & (table["metric"] == "AUC(70)")].iloc[0]
    assert pooled["n"] == 6 and pooled["mean"] == pytest.approx(np.mean([10, 7, 9, 5, 5, 2]))  # b: best of total, balance
    assert pooled["verdict"] == HOLDS
