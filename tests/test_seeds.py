"""Scores with their seed spread: per-seed curves, mean ± sd over seeds, the tables, metrics and plots built on them."""
import numpy as np
import pandas as pd
import pytest

from pipeline.figures import plot_seed_spread, seed_means
from pipeline.runs.reporting import headline
from pipeline.scoring import auc, score_curves, seed_summary, spearman
from pipeline.tables import method_comparison

RNG = np.random.default_rng(7)


@pytest.fixture
def points() -> pd.DataFrame:
    """Two penalties × 3 seeds × 4 λ', plus a baseline per seed; one diverged run."""
    rows = [{"setting": "s", "method": "baseline", "p": 1.0, "T": 1, "lam_norm": 0.0, "seed": seed,
             "test_accuracy": 0.95 + 0.01 * seed, "energy_ratio": 1.0 - 0.02 * seed, "diverged": False}
            for seed in range(3)]
    for method, slope in (("syn", 0.3), ("total", 0.6)):
        for seed in range(3):
            for i, lam in enumerate([2.0, 8.0, 32.0, 128.0]):
                rows.append({"setting": "s", "method": method, "p": 1.0, "T": 1, "lam_norm": lam, "seed": seed,
                             "test_accuracy": float(np.clip(0.97 - slope * i / 3 + RNG.normal(0, 0.02), 0, 1)),
                             "energy_ratio": float(0.8 / (i + 1) + RNG.uniform(0, 0.05)), "diverged": False})
    rows[-1]["diverged"] = True
    return pd.DataFrame(rows)


def test_each_seed_is_scored_alone(points):
    per_seed = score_curves(points, [70, 50], by_seed=True)
    assert len(per_seed) == 6 and list(per_seed.columns[:7]) == ["setting", "method", "p", "T", "neuron", "protocol",
                                                                 "seed"]
    for _, row in per_seed.iterrows():  # independent: the seed's valid runs through the metrics directly
        own = points[(points["method"] == row["method"]) & (points["seed"] == row["seed"]) & ~points["diverged"]]
        assert row["auc_70"] == auc(own["energy_ratio"], own["test_accuracy"], 70)
        assert row["spearman_50"] == pytest.approx(spearman(own["energy_ratio"], own["test_accuracy"], 50),
                                                   nan_ok=True)
        assert row["n_points"] == len(own)
    assert per_seed["n_dropped"].sum() == 1


def test_summary_is_mean_and_sample_sd(points):
    per_seed = score_curves(points, [70, 50], by_seed=True)
    summary = seed_summary(per_seed)
    assert list(summary["method"]) == ["syn", "total"] and set(summary["n_seeds"]) == {3}
    for _, row in summary.iterrows():
        values = per_seed.loc[per_seed["method"] == row["method"], "auc_50"].to_numpy()
        assert row["auc_50_mean"] == pytest.approx(sum(values) / 3)
        assert row["auc_50_sd"] == pytest.approx(np.sqrt(((values - values.mean()) ** 2).sum() / 2))
    one = seed_summary(score_curves(points[points["seed"] == 0], [70], by_seed=True))
    assert one["n_seeds"].eq(1).all() and one["auc_70_sd"].isna().all()  # one seed: no spread


def test_comparison_headline_and_plot_carry_the_spread(points, tmp_path):
    scores = score_curves(points, [70, 50])
    summary = seed_summary(score_curves(points, [70, 50], by_seed=True))
    table = method_comparison(scores, summary)
    syn = summary.iloc[0]
    assert table.loc[0, "AUC(70) seeds"] == f"{syn['auc_70_mean']:.3f} ± {syn['auc_70_sd']:.3f}"
    assert "Spearman(50) seeds" in table.columns
    assert "AUC(70) seeds" not in method_comparison(scores, seed_summary(
        score_curves(points[points["seed"] == 0], [70, 50], by_seed=True))).columns  # one seed: no spread columns
    baselines = {"s": {"test_accuracy": 0.96, "energy_pj": 2e6}}
    metrics = headline(scores, baselines, summary)
    assert metrics["syn"]["auc70"] == round(scores.loc[0, "auc_70"], 2)
    assert metrics["syn"]["auc70_sd"] == round(syn["auc_70_sd"], 2)
    assert "auc70_sd" not in headline(scores, baselines)["syn"]

    means = seed_means(points)
    row = means[(means["method"] == "total") & (means["lam_norm"] == 128.0)].iloc[0]
    assert row["n_seeds"] == 2  # the diverged run is left out
    kept = points[(points["method"] == "total") & (points["lam_norm"] == 128.0) & ~points["diverged"]]
    assert row["test_accuracy_mean"] == pytest.approx(kept["test_accuracy"].mean())
    assert row["energy_ratio_sd"] == pytest.approx(kept["energy_ratio"].std(ddof=1))
    written = plot_seed_spread(points, tmp_path / "spread")
    assert [p.suffix for p in written] == [".png", ".pdf"] and all(p.stat().st_size > 0 for p in written)
