"""Alg. 1 AUC(P), Spearman(P), MI(P) and curve grouping (spec §8), checked against hand values."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.scoring import (
    _positive_part_integral,
    auc,
    conversion_keys,
    curve_key,
    envelope,
    mi,
    mi_knn,
    score_columns,
    score_curves,
    seed_summary,
    spearman,
    split_curves,
)

# A hand-worked curve, cutoff P = 70 (P' = 0.7):
#   (0.20, 0.60)  below the cutoff -> dropped
#   (0.30, 0.80)  first kept point, x_1 = 0.3
#   (0.50, 0.75)  below the running max 0.80 -> skipped
#   (0.60, 0.90)  record
#   (0.80, 0.85)  below the running max 0.90 -> skipped
#   (1.20, 0.99)  x > 1 -> dropped; must not become "max y"
# Envelope: (0.3, 0) -> (0.3, 0.8) -> (0.6, 0.9) -> (1, 0.9).
# max(c - 0.7, 0): 0 on [0, 0.3); the vertical rise at x = 0.3 crosses 0.7
# with zero width; trapezoid on [0.3, 0.6]: 0.3 * (0.1 + 0.2) / 2 = 0.045;
# rectangle on [0.6, 1]: 0.4 * 0.2 = 0.08. Area 0.125; / (1 - 0.7) -> 41.666… %.
HAND_X = [0.2, 0.3, 0.5, 0.6, 0.8, 1.2]
HAND_Y = [0.6, 0.8, 0.75, 0.9, 0.85, 0.99]


@pytest.fixture
def strict_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_envelope_hand_curve():
    xs, ys = envelope(HAND_X, HAND_Y, 70)
    np.testing.assert_allclose(xs, [0.3, 0.3, 0.6, 1.0])
    np.testing.assert_allclose(ys, [0.0, 0.8, 0.9, 0.9])


def test_auc_hand_curve():
    assert auc(HAND_X, HAND_Y, 70) == pytest.approx(0.125 / 0.3 * 100)


def test_auc_hand_curve_cutoff_50():
    # P' = 0.5: (0.2, 0.6) is kept now and is x_1; every later point is a record
    # except (0.5, 0.75). Envelope (0.2,0) (0.2,0.6) (0.3,0.8) (0.6,0.9) (1,0.9).
    # Area of c - 0.5: 0.1*(0.1+0.3)/2 + 0.3*(0.3+0.4)/2 + 0.4*0.4 = 0.02 + 0.105 + 0.16 = 0.285.
    assert auc(HAND_X, HAND_Y, 50) == pytest.approx(0.285 / 0.5 * 100)


def test_positive_part_integral_crossing_segments():
    # c - 0.7 goes -0.2 -> +0.2 on [0, 1] (zero at 0.5: triangle 0.5 * 0.2 / 2 = 0.05)
    # then +0.2 -> -0.1 on [1, 2] (zero at 1 + 2/3: triangle (2/3) * 0.2 / 2 = 1/15),
    # then stays below on [2, 3].
    xs = np.array([0.0, 1.0, 2.0, 3.0])
    ys = np.array([0.5, 0.9, 0.6, 0.65])
    assert _positive_part_integral(xs, ys, 0.7) == pytest.approx(0.05 + 1 / 15)


def test_auc_single_point():
    # Envelope (0.4, 0) (0.4, 0.8) (1, 0.8): 0.6 * 0.1 / 0.3 -> 20 %.
    assert auc([0.4], [0.8], 70) == pytest.approx(20.0)


def test_auc_perfect_point_is_100():
    assert auc([0.0], [1.0], 70) == pytest.approx(100.0)


@pytest.mark.parametrize("x, y", [([0.2, 0.5], [0.6, 0.69]), ([1.5, 2.0], [0.9, 0.95]), ([], [])])
def test_auc_empty_curve_is_zero(x, y):
    # All below the cutoff, all beyond the baseline's energy, or no runs at all.
    assert auc(x, y, 70) == 0.0
    assert envelope(x, y, 70)[0].size == 0


def test_auc_ties_in_x_keep_higher_accuracy():
    # Envelope (0.5, 0) (0.5, 0.9) (1, 0.9): 0.5 * 0.2 / 0.3 -> 33.33 %.
    for x, y in [([0.5, 0.5], [0.8, 0.9]), ([0.5, 0.5], [0.9, 0.8])]:
        xs, ys = envelope(x, y, 70)
        np.testing.assert_allclose(ys, [0.0, 0.9, 0.9])
        assert auc(x, y, 70) == pytest.approx(0.5 * 0.2 / 0.3 * 100)


def test_auc_invariant_to_input_order():
    rng = np.random.default_rng(0)
    reference = auc(HAND_X, HAND_Y, 70)
    for _ in range(10):
        order = rng.permutation(len(HAND_X))
        assert auc(np.take(HAND_X, order), np.take(HAND_Y, order), 70) == pytest.approx(reference)


def _dense_auc(x, y, cutoff, n=400_001):
    """Independent numeric AUC: the envelope sampled on a fine grid, trapezoid rule."""
    xs, ys = envelope(x, y, cutoff)
    if xs.size == 0:
        return 0.0
    grid = np.linspace(0.0, 1.0, n)
    # Skip the prepended (x_1, 0): c = 0 left of x_1 via `left`. Remaining equal xs have equal ys.
    c = np.interp(grid, xs[1:], ys[1:], left=0.0)
    level = cutoff / 100
    return 100 * np.trapezoid(np.maximum(c - level, 0.0), grid) / (1 - level)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("cutoff", [70, 50])
def test_auc_matches_dense_integration(seed, cutoff):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    x = rng.uniform(0.0, 1.3, n)
    y = rng.uniform(0.3, 1.0, n)
    assert auc(x, y, cutoff) == pytest.approx(_dense_auc(x, y, cutoff), abs=2e-3)


@pytest.mark.parametrize("seed", range(8))
def test_envelope_is_monotone_upper_record_curve(seed):
    rng = np.random.default_rng(100 + seed)
    x = rng.uniform(0.0, 1.3, 25)
    y = rng.uniform(0.5, 1.0, 25)
    xs, ys = envelope(x, y, 70)
    assert np.all(np.diff(xs) >= 0) and np.all(np.diff(ys) >= 0)
    kept = (y >= 0.7) & (x <= 1)
    # Every kept point lies on or under c; every vertex but the two added ones is a run.
    assert np.all(np.interp(x[kept], xs[1:], ys[1:]) >= y[kept] - 1e-12)
    runs = set(zip(x[kept], y[kept]))
    assert all(point in runs for point in zip(xs[1:-1], ys[1:-1]))
    assert ys[-1] == y[kept].max() and xs[-1] == 1.0


def test_auc_rejects_percentages():
    with pytest.raises(ValueError, match="fractions"):
        auc([0.5], [93.0], 70)


def test_spearman_hand_values(strict_warnings):
    x = [0.1, 0.2, 0.4, 0.8]
    assert spearman(x, [0.75, 0.8, 0.85, 0.9], 70) == pytest.approx(1.0)
    assert spearman(x, [0.9, 0.85, 0.8, 0.75], 70) == pytest.approx(-1.0)
    # The point below the cutoff would break the order; it is dropped first.
    assert spearman([*x, 0.05], [0.75, 0.8, 0.85, 0.9, 0.2], 70) == pytest.approx(1.0)
    # Ranks x: 1 2 3 4, y: 1 3 2 4 -> d² = 0+1+1+0 = 2; ρ = 1 - 6·2 / (4·15) = 0.8.
    assert spearman(x, [0.75, 0.85, 0.8, 0.9], 70) == pytest.approx(0.8)
    # x > 1 counts for Spearman (only AUC restricts to x ≤ 1).
    assert spearman([0.5, 1.5], [0.8, 0.9], 70) == pytest.approx(1.0)


@pytest.mark.parametrize("x, y", [([], []), ([0.5], [0.8]), ([0.5, 0.6], [0.8, 0.8]),
                                  ([0.5, 0.5], [0.8, 0.9]), ([0.5, 0.6], [0.8, 0.1])])
def test_spearman_degenerate_is_nan_without_warning(strict_warnings, x, y):
    assert math.isnan(spearman(x, y, 70))


def test_mi_hand_values(strict_warnings):
    assert mi([0.1, 0.2, 0.3, 0.4], [0.8, 0.7, 0.9, 0.75], 70) == pytest.approx(math.log(4))
    # Two equal runs: classes of sizes 2, 1, 1 -> H = -(½ln½ + 2·¼ln¼) = 1.5 ln 2 < ln 4.
    assert mi([0.1, 0.1, 0.3, 0.4], [0.8, 0.8, 0.9, 0.75], 70) == pytest.approx(1.5 * math.log(2))
    # Equal energy, distinct accuracy: x is a function of y, MI = H(x) = 1.5 ln 2 again.
    assert mi([0.1, 0.1, 0.3, 0.4], [0.8, 0.85, 0.9, 0.75], 70) == pytest.approx(1.5 * math.log(2))
    # Cutoff: the run at 0.5 accuracy is dropped, leaving 3 distinct points.
    assert mi([0.1, 0.2, 0.3, 0.4], [0.8, 0.5, 0.9, 0.75], 70) == pytest.approx(math.log(3))


@pytest.mark.parametrize("metric", [mi, mi_knn])
@pytest.mark.parametrize("x, y", [([], []), ([0.5], [0.8]), ([0.5, 0.6], [0.1, 0.8])])
def test_mi_fewer_than_two_points_is_zero(strict_warnings, metric, x, y):
    assert metric(x, y, 70) == 0.0


def test_mi_knn(strict_warnings):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, 60)
    dependent = 0.7 + 0.3 * x
    independent = rng.uniform(0.7, 1.0, 60)
    strong = mi_knn(x, dependent, 70)
    assert strong > 1.0 and strong == mi_knn(x, dependent, 70)  # reproducible
    assert mi_knn(x, independent, 70) < 0.2
    assert mi_knn([0.5, 0.6], [0.8, 0.9], 70) >= 0.0  # two points: n_neighbors = 1 works
    assert mi_knn([0.5, 0.5, 0.5], [0.8, 0.85, 0.9], 70) == pytest.approx(0.0, abs=1e-6)


def _run(setting="s", method="syn", p=1, T=1, acc=0.9, energy=0.5, diverged=False, seed=0):
    return dict(setting=setting, method=method, penalty=method.removeprefix("omega_"), p=p, lam_norm=1.0,
                seed=seed, T=T, test_accuracy=acc, energy_ratio=energy, energy_pj=1.0, rate_mean=0.1,
                rate_sum=0.5, dead_rate=0.0, diverged=diverged)


def test_score_curves_groups_drops_and_scores():
    points = pd.DataFrame([
        _run(method="baseline", p=np.nan, acc=0.92, energy=1.0),
        _run(acc=0.8, energy=0.3), _run(acc=0.9, energy=0.6), _run(acc=0.85, energy=0.8),
        _run(acc=0.95, energy=0.2, diverged=True), _run(acc=np.nan, energy=0.4), _run(acc=0.9, energy=np.nan),
        _run(acc=0.9, energy=np.inf),
        _run(p=2, acc=0.8, energy=0.4),
        _run(method="total", acc=0.8, energy=0.5),
        _run(method="ann2snn", p=np.nan, T=10, acc=0.9, energy=1.5),
        _run(method="ann2snn", p=np.nan, T=5, acc=0.8, energy=0.4),
    ])
    scores = score_curves(points)
    assert list(scores.columns) == score_columns((70, 50))
    assert list(scores["label"]) == ["Ω_syn p=1", "Ω_syn p=2", "Ω_total p=1", "ann2snn T=5", "ann2snn T=10"]
    syn1 = scores.iloc[0]
    assert (syn1["n_points"], syn1["n_dropped"]) == (3, 4)
    # (0.3, 0.8) (0.6, 0.9) (0.8, 0.85): the hand curve's kept part -> 41.67 %; the
    # diverged (0.2, 0.95) run would have lifted it.
    assert syn1["auc_70"] == pytest.approx(0.125 / 0.3 * 100)
    assert syn1["mi_70"] == pytest.approx(math.log(3))
    single = scores.iloc[1]  # one run: (0.4, 0.8) -> 0.6 * 0.1 / 0.3 = 20 %
    assert (single["n_points"], single["n_dropped"], single["auc_70"]) == (1, 0, pytest.approx(20.0))
    assert math.isnan(single["spearman_70"]) and single["mi_70"] == 0.0
    assert scores.iloc[4]["auc_70"] == 0.0  # ann2snn T=10 only beyond the baseline's energy
    assert scores["n_dropped"].sum() == 4


def test_score_curves_empty_and_custom_cutoffs():
    empty = score_curves(pd.DataFrame(columns=list(_run())))
    assert empty.empty and list(empty.columns) == score_columns((70, 50))
    assert "auc_90" in score_curves(pd.DataFrame([_run()]), cutoffs=(90,)).columns


def test_split_curves_rejects_unknown_method():
    with pytest.raises(ValueError, match="unknown method"):
        split_curves(pd.DataFrame([_run(method="omega_magic")]))


def test_conversion_curves_are_keyed_by_neuron_and_protocol():
    runs = [_run(method="ann2snn", T=T, acc=acc, energy=energy, seed=seed) | {"neuron": neuron, "protocol": protocol}
            for T, neuron, protocol, acc, energy in [(1, "multi", "per_intensity", 0.9, 0.5),
                                                     (1, "single", "per_intensity", 0.8, 0.5),
                                                     (1, "multi", "ramp", 0.75, 0.5),
                                                     (5, "single", "ramp", 0.95, 0.5)]
            for seed in (0, 1)]
    scores = score_curves(pd.DataFrame([_run(), *runs]), by_seed=True)
    conversion = scores[scores["method"] == "ann2snn"]
    assert list(conversion["label"]) == ["ann2snn per_intensity T=1", "ann2snn per_intensity T=1", "ann2snn T=1",
                                         "ann2snn T=1", "ann2snn single per_intensity T=1",
                                         "ann2snn single per_intensity T=1", "ann2snn single T=5", "ann2snn single T=5"]
    assert list(conversion["auc_70"].round(6)) == [  # one point (0.5, y) per seed: 0.5·(y − 0.7)/0.3
        round(a, 6) for a in [33.333333, 33.333333, 8.333333, 8.333333, 16.666667, 16.666667, 41.666667, 41.666667]]
    penalty = scores[scores["method"] == "syn"].iloc[0]
    assert pd.isna(penalty["neuron"]) and pd.isna(penalty["protocol"])
    summary = seed_summary(scores)
    assert len(summary) == 5 and list(summary["n_seeds"]) == [1, 2, 2, 2, 2]  # the penalty curve is not dropped
    assert curve_key("ann2snn", 1.0, 5, neuron="single", protocol="per_intensity") == "ann2snn_single_per_intensity_T5"
    assert curve_key("ann2snn", 1.0, 5) == "ann2snn_T5"


def test_conversion_runs_without_neuron_or_protocol_get_the_defaults():
    keyed = conversion_keys(pd.DataFrame([_run(), _run(method="ann2snn", T=5)]))
    assert list(keyed["neuron"].fillna("-")) == ["-", "multi"]
    assert list(keyed["protocol"].fillna("-")) == ["-", "ramp"]  # the paper's protocol, params.yaml's default
    assert score_curves(pd.DataFrame([_run(method="ann2snn", T=5)]))["label"].item() == "ann2snn T=5"
