"""The claims table on synthetic results with known answers: units of replication, Holm over the table,
TOST for no-effect claims, conversion rows per reading, untested claims noted, post hoc rows marked."""
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.comparisons import by_unit, read_timing
from pipeline.inference import holm
from pipeline.verdicts import HOLDS, INCONCLUSIVE, NOT_HOLDS, UNTESTED, claim_table, combine, verdict

SEEDS = range(6)
SETTINGS = [{"name": "a", "optimizer": "adam", "surrogate": "s3nn"},
            {"name": "b", "optimizer": "adam", "surrogate": "linear"},
            {"name": "m", "optimizer": "msgd", "surrogate": "s3nn"}]
NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.25, -0.05])  # one per seed, mean 0


def per_seed(curves: dict) -> pd.DataFrame:
    """Per-seed scores: curves[(setting, method, p)] or [(setting, "ann2snn", p, T, neuron, protocol)] = the
    AUC(70) of seed 0 (each later seed adds NOISE); AUC(50) = AUC(70) + 10, Spearman and MI constant."""
    rows = []
    for key, auc in curves.items():
        setting, method, p, T, neuron, protocol = (*key, 1, None, None) if len(key) == 3 else key
        for seed in SEEDS:
            value = auc + 5 * NOISE[seed] if np.isscalar(auc) else auc[seed]
            rows.append({"setting": setting, "method": method, "p": p, "T": T, "neuron": neuron, "protocol": protocol,
                         "seed": seed, "auc_70": value, "auc_50": value + 10, "spearman_70": 0.5, "spearman_50": 0.5,
                         "mi_70": 1.0, "mi_50": 1.0})
    return pd.DataFrame(rows)


def penalties(settings=("a", "b", "m"), syn=60.0, total=50.0, balance=30.0) -> dict:
    return {(s, m, 1.0): v for s in settings for m, v in (("syn", syn), ("total", total), ("balance", balance))}


def points(slopes: dict[str, float] | None = None, dead: dict[str, float] | None = None) -> pd.DataFrame:
    """Ω_syn runs at λ' = 2, 8, 32: accuracy falls by slopes[setting] per doubling, dead rate dead[setting]."""
    slopes, dead = slopes or {"a": 0.02, "b": 0.02, "m": 0.06}, dead or {"a": 0.5, "b": 0.5, "m": 0.3}
    rows = [{"setting": s, "method": "syn", "p": 1.0, "seed": seed, "lam_norm": lam, "diverged": False,
             "test_accuracy": 0.95 - slopes[s] * np.log2(lam) + 0.001 * NOISE[seed],
             "dead_rate": dead[s] + 0.01 * NOISE[seed], "energy_ratio": 0.5 / lam}
            for s in slopes for seed in SEEDS for lam in (2.0, 8.0, 32.0)]
    return pd.DataFrame(rows)


def grid(bn_accuracy_shift: float = 0.0) -> pd.DataFrame:
    """λ ∈ {0, 1e-5} × λ_WD ∈ {0, 1e-4} × B_BN ∈ {0, 1}: weight decay alone kills 5 points of neurons and
    saves 0.04 of the energy, Ω_syn saves 0.5; B_BN shifts accuracy by `bn_accuracy_shift`, plus noise."""
    rows = []
    for seed in SEEDS:
        for lam in (0.0, 1e-5):
            for wd in (0.0, 1e-4):
                for bn in (0, 1):
                    noise = 0.002 * NOISE[seed] * bn
                    rows.append({"setting": "a", "lam": lam, "weight_decay": wd, "bn_decay": bn, "seed": seed,
                                 "diverged": False, "test_accuracy": 0.9 + bn * bn_accuracy_shift + noise,
                                 "dead_rate": 0.2 + 0.05 * (wd > 0) + 0.3 * (lam > 0) + 0.01 * NOISE[seed],
                                 "energy_ratio": 1.0 - 0.5 * (lam > 0) - 0.04 * (wd > 0) + noise})
    return pd.DataFrame(rows)


def row(table: pd.DataFrame, comparison: str, metric: str) -> pd.Series:
    match = table[(table["comparison"] == comparison) & (table["metric"] == metric)]
    assert len(match) == 1, f"{len(match)} rows for {comparison!r}, {metric!r}"
    return match.iloc[0]


def test_verdict_and_combine():
    assert verdict(0.01, 3.0) == HOLDS and verdict(0.01, -3.0) == NOT_HOLDS and verdict(0.2, 3.0) == INCONCLUSIVE
    assert verdict(0.01, 0.0, inside=True) == HOLDS and verdict(0.01, 9.0, inside=False) == NOT_HOLDS
    assert verdict(float("nan"), 3.0) == INCONCLUSIVE
    assert combine([HOLDS, HOLDS], every=False) == HOLDS
    assert combine([HOLDS, INCONCLUSIVE], every=False) == INCONCLUSIVE
    assert combine([HOLDS, NOT_HOLDS], every=False) == INCONCLUSIVE
    assert combine([HOLDS, NOT_HOLDS], every=True) == NOT_HOLDS
    assert combine([HOLDS, INCONCLUSIVE], every=True) == INCONCLUSIVE


def test_the_unit_is_the_seed_for_one_setting_and_the_setting_mean_for_several():
    differences = pd.DataFrame({"setting": ["a", "a", "a", "a", "b", "b"], "seed": [0, 0, 1, 1, 0, 1],
                                "difference": [1.0, 3.0, 5.0, np.nan, 10.0, 20.0]})
    values, unit = by_unit(differences[differences["setting"] == "a"])
    assert unit == "seeds" and list(values) == [2.0, 5.0]  # seed 0's two rows averaged, NaN left out
    values, unit = by_unit(differences)
    assert unit == "setting means" and list(values) == [3.5, 15.0]
    curves = {**penalties(), ("a", "syn", 2.0): 55.0, ("a", "total", 2.0): 45.0, ("a", "balance", 2.0): 20.0}
    table = claim_table(per_seed(curves), points(), grid(), SETTINGS)
    by_p = table[(table["comparison"] == "AUC Ω_syn − Ω_total") & (table["metric"] == "AUC(70)")]
    assert list(by_p["unit"]) == ["setting means", "seeds"] and list(by_p["n"]) == [3, 6]
    assert row(table, "AUC Ω_syn − best other Ω, p = 1, a", "AUC(70)")["unit"] == "seeds"


def test_a_true_effect_holds_a_null_does_not_and_holm_sees_the_whole_table():
    curves = {**penalties(syn=60.0), ("m", "syn", 1.0): [50.0 + 0.5 * n for n in NOISE * 10],
              ("m", "total", 1.0): [49.0 + 0.5 * n for n in NOISE[::-1] * 10]}  # m: a small, noisy lead
    table = claim_table(per_seed(curves), points(), grid(), SETTINGS)
    strong = row(table, "AUC Ω_syn − best other Ω, p = 1, a", "AUC(70)")  # +10 at every seed
    assert strong["verdict"] == HOLDS and strong["mean"] == pytest.approx(10.0)
    null = row(table, "AUC Ω_syn − best other Ω, p = 1, m", "AUC(70)")
    assert null["verdict"] == INCONCLUSIVE and null["n_needed"] > 6
    tested = table[table["p_value"].notna()]
    assert np.allclose(tested["p_holm"], holm(tested["p_value"]))
    assert (tested["p_holm"] >= tested["p_value"]).all()
    raw_only = tested[(tested["p_value"] < 0.05) & (tested["p_holm"] >= 0.05)]
    assert (raw_only["verdict"] == INCONCLUSIVE).all()
    assert row(table, "AUC Ω_syn − best other Ω, p = 1, a", "AUC(all cutoffs)")["verdict"] == HOLDS


def test_holm_turns_a_raw_hold_inconclusive():
    """A lead of 1 ± 0.7 at 6 seeds is significant alone (p ≈ 0.02) but not among the table's tests."""
    lead = list(61.0 + 0.7 * NOISE / NOISE.std(ddof=1))
    curves = {**penalties(), ("b", "syn", 1.0): lead, ("b", "total", 1.0): [60.0] * 6}
    table = claim_table(per_seed(curves), points(), grid(), SETTINGS)
    b = row(table, "AUC Ω_syn − best other Ω, p = 1, b", "AUC(70)")
    assert b["p_value"] < 0.05 < b["p_holm"] and b["verdict"] == INCONCLUSIVE
    surrogates = table[table["claim"] == "Ω_syn leads whatever the surrogate (cnn7, adam)"].iloc[0]
    assert surrogates["verdict"] == INCONCLUSIVE and surrogates["post_hoc"]  # a holds, b does not decide


def test_every_surrogate_fails_when_one_does_not_hold():
    curves = {**penalties(), ("b", "syn", 1.0): 40.0}  # linear: Ω_total leads by 10 at every seed
    table = claim_table(per_seed(curves), points(), grid(), SETTINGS)
    assert table[table["claim"] == "Ω_syn leads whatever the surrogate (cnn7, adam)"].iloc[0]["verdict"] == NOT_HOLDS
    average = row(table, "AUC Ω_syn − best other Ω, p = 1, the 2 settings' means", "AUC(70)")
    assert average["unit"] == "setting means" and average["n"] == 2 and average["post_hoc"]


def test_no_effect_claims_are_tested_against_the_profiles_margins():
    table = claim_table(per_seed(penalties()), points(), grid(bn_accuracy_shift=0.0), SETTINGS)
    accuracy = row(table, "test accuracy at B_BN = 1 − at B_BN = 0", "test_accuracy")
    assert accuracy["rule"] == "TOST, |mean| < 0.02" and accuracy["verdict"] == HOLDS and accuracy["n"] == 6
    shifted = claim_table(per_seed(penalties()), points(), grid(bn_accuracy_shift=0.03), SETTINGS)
    assert row(shifted, "test accuracy at B_BN = 1 − at B_BN = 0", "test_accuracy")["verdict"] == NOT_HOLDS
    strict = claim_table(per_seed(penalties()), points(), grid(bn_accuracy_shift=0.0), SETTINGS,
                         margins={"test_accuracy": 1e-4})
    tight = row(strict, "test accuracy at B_BN = 1 − at B_BN = 0", "test_accuracy")
    assert tight["rule"] == "TOST, |mean| < 0.0001" and tight["verdict"] == INCONCLUSIVE  # noise ±0.0008
    loss = row(table, "test accuracy at λ_WD > 0 − at λ_WD = 0 (no notable loss)", "test_accuracy")
    assert loss["rule"] == "non-inferiority, mean > −0.02"


def test_the_grids_weight_decay_rows():
    table = claim_table(per_seed(penalties()), points(), grid(), SETTINGS)
    kills = row(table, "dead rate at λ_WD > 0 − at λ_WD = 0 (λ = 0)", "dead_rate")
    assert kills["mean"] == pytest.approx(0.05) and kills["verdict"] == HOLDS and kills["post_hoc"]
    saves = row(table, "energy ratio at λ_WD = 0 − at λ_WD > 0 (λ = 0)", "energy_ratio")
    assert saves["mean"] == pytest.approx(0.04) and saves["verdict"] == HOLDS
    less = row(table, "energy ratio with λ_WD > 0 alone − with Ω_syn alone (λ > 0)", "energy_ratio")
    assert less["mean"] == pytest.approx(0.96 - 0.5) and less["verdict"] == HOLDS
    with_syn = row(table, "energy ratio at λ_WD = 0 − at λ_WD > 0", "energy_ratio")
    assert with_syn["mean"] == pytest.approx(0.04) and not with_syn["post_hoc"]


def test_optimiser_rows_pair_the_twin_settings_by_seed():
    table = claim_table(per_seed(penalties()), points(), grid(), SETTINGS)
    dead = row(table, "dead rate, Adam − momentum SGD, Ω_syn p=1 at each λ'", "dead_rate")
    assert dead["unit"] == "seeds" and dead["mean"] == pytest.approx(0.2) and dead["verdict"] == HOLDS
    sensitive = row(table, "accuracy lost per doubling of λ' (Ω_syn p=1), momentum SGD − Adam", "test_accuracy")
    assert sensitive["mean"] == pytest.approx(0.04) and sensitive["verdict"] == HOLDS
    alone = claim_table(per_seed(penalties(("a", "b"))), points(), grid(), SETTINGS[:2])
    assert set(alone.loc[alone["claim"] == "Adam kills more neurons than momentum SGD", "verdict"]) == {UNTESTED}
    no_runs = claim_table(per_seed(penalties()), points({"a": 0.02, "b": 0.02}, {"a": 0.5, "b": 0.5}), grid(), SETTINGS)
    assert set(no_runs.loc[no_runs["claim"] == "Adam kills more neurons than momentum SGD", "verdict"]) == {UNTESTED}


def test_conversion_rows_per_neuron_protocol_and_t():
    curves = {**penalties(), ("a", "ann2snn", 1.0, 1, "multi", "per_intensity"): 70.0,
              ("a", "ann2snn", 1.0, 1, "single", "per_intensity"): 40.0,
              ("a", "ann2snn", 1.0, 5, "multi", "ramp"): 30.0}
    table = claim_table(per_seed(curves), points(), grid(), SETTINGS)
    verdicts = {c: row(table, c, "AUC(all cutoffs)")["verdict"] for c in
                ["AUC Ω_syn p=1 − ann2snn multi per_intensity T=1",
                 "AUC Ω_syn p=1 − ann2snn single per_intensity T=1", "AUC Ω_syn p=1 − ann2snn multi ramp T=5"]}
    assert list(verdicts.values()) == [NOT_HOLDS, HOLDS, HOLDS]
    legacy = per_seed(penalties()).assign(neuron=None, protocol=None)  # a table from before the columns existed
    legacy = pd.concat([legacy, per_seed({("a", "ann2snn", 1.0, 5, None, None): 30.0})])
    assert "AUC Ω_syn p=1 − ann2snn multi ramp T=5" in set(claim_table(legacy, points(), grid(), SETTINGS)["comparison"])


def test_untested_claims_are_noted_and_appear_once_their_settings_exist():
    table = claim_table(per_seed(penalties()), points(), None, SETTINGS)
    notes = table[table["verdict"] == UNTESTED].set_index("claim")["note"]
    assert notes["Ω_syn leads on vgg11"] == "no vgg11 setting in this profile"
    assert notes["B_BN has no notable effect (λ_WD > 0)"] == "no grid in this profile"
    assert "direct training beats conversion" in notes and "the penalty barely changes training time (Table 7)" in notes
    assert table.loc[table["verdict"] == UNTESTED, "p_value"].isna().all()
    vgg = [*SETTINGS, {"name": "v", "model": "vgg11", "optimizer": "adam", "surrogate": "s3nn"}]
    table = claim_table(per_seed(penalties(("a", "b", "m", "v"))), points(), grid(), vgg)
    vgg_row = row(table, "AUC Ω_syn − best other Ω, p = 1, v", "AUC(all cutoffs)")
    assert vgg_row["claim"] == "Ω_syn leads on vgg11 (adam, s3nn)"
    assert "Ω_syn leads on vgg11" not in set(table["claim"]) and "Ω_syn leads on resnet18" in set(table["claim"])


def test_training_time_rows_read_the_bench_file(tmp_path):
    path = tmp_path / "training_time.json"
    assert read_timing(path) is None
    rounds = 1 + 0.004 * np.tile([1, -1, 0.5, -0.5], 5)
    path.write_text(json.dumps({"penalties": [{"penalty": "syn", "p": 1, "ratios": list(rounds)},
                                              {"penalty": "total", "p": 1, "ratios": list(rounds + 0.2)}]}))
    table = claim_table(per_seed(penalties()), points(), grid(), SETTINGS, timing=read_timing(path))
    syn = row(table, "step time with Ω_syn p=1 ÷ without − 1", "time_ratio")
    assert (syn["unit"], syn["n"], syn["verdict"]) == ("interleaved rounds", 20, HOLDS)
    assert row(table, "step time with Ω_total p=1 ÷ without − 1", "time_ratio")["verdict"] == NOT_HOLDS


def test_fewer_than_three_seeds_is_refused_in_one_line():
    two = per_seed(penalties())
    with pytest.raises(ValueError, match="at least 3 seeds per curve, got 2"):
        claim_table(two[two["seed"] < 2], points(), grid(), SETTINGS)


def test_a_one_setting_profile_without_grid_conversion_or_timing_still_gives_a_table():
    table = claim_table(per_seed(penalties(("a",))), points({"a": 0.02}, {"a": 0.5}), None, SETTINGS[:1])
    ordering = row(table, "AUC Ω_syn − Ω_total", "AUC(70)")
    assert (ordering["unit"], ordering["n"], ordering["verdict"]) == ("seeds", 6, HOLDS)
    assert not table["claim"].str.contains("whatever the surrogate|p = 1 beats").any()
    assert (table.loc[table["p_value"].isna() & table["metric"].isna(), "verdict"] == UNTESTED).all()
