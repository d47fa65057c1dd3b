"""The statistics of the claims table on synthetic differences with known answers: t test and TOST against
closed forms, Holm against hand-worked adjustments, and the seeds a test needs against simulated power."""
import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from pipeline.inference import holm, margin_test, n_needed, t_test


def with_moments(mean: float, sd: float, n: int) -> np.ndarray:
    """n differences whose sample mean and sd (ddof = 1) are exactly `mean` and `sd`."""
    z = np.linspace(-1, 1, n)
    return mean + sd * (z - z.mean()) / z.std(ddof=1)


def tail_df2(t: float) -> float:
    """P(T > t) for Student's t with 2 degrees of freedom, closed form: (1 − t/√(t² + 2)) / 2."""
    return (1 - t / math.sqrt(t * t + 2)) / 2


def test_t_test_matches_the_closed_form_at_two_degrees_of_freedom():
    result = t_test([5.0, -1.0, 7.0])
    t = 11 / 3 / (math.sqrt(52 / 3) / math.sqrt(3))
    assert result.p_value == pytest.approx(2 * tail_df2(t))
    half = student_t.ppf(0.975, 2) * math.sqrt(52 / 3) / math.sqrt(3)
    assert (result.ci_low, result.ci_high) == pytest.approx((11 / 3 - half, 11 / 3 + half))
    assert t_test([2.0, 2.0, 2.0]).p_value == 0.0 and math.isnan(t_test([0.0, 0.0]).p_value)
    assert math.isnan(t_test([1.0]).p_value) and t_test([1.0, np.nan, 3.0]).n == 2


def test_tost_matches_the_closed_form_and_decides_at_the_margin():
    inside = margin_test([-1.0, 0.0, 1.0], margin=2.0)  # mean 0, sd 1: both one-sided t = 2√3
    assert inside.inside and inside.p_value == pytest.approx(tail_df2(2 * math.sqrt(3)))
    on_edge = margin_test(with_moments(2.0, 1.0, 3), margin=2.0)  # an estimate on the edge is not inside
    assert not on_edge.inside and on_edge.p_value == pytest.approx(1.0)
    just_inside = margin_test(with_moments(1.999, 1.0, 3), margin=2.0)  # TOST p → 1/2 at the edge
    assert just_inside.inside and just_inside.p_value == pytest.approx(0.5, abs=1e-3)
    beyond = margin_test(with_moments(-5.0, 1.0, 3), margin=2.0)  # δ < −m: one-sided t = −3√3, doubled
    assert not beyond.inside and beyond.p_value == pytest.approx(2 * tail_df2(3 * math.sqrt(3)))
    assert margin_test([0.0, 0.0, 0.0], margin=0.02).p_value == 0.0


def test_tost_reproduces_the_reviewers_b_bn_numbers():
    """Issue #22: accuracy −0.74 ± 4.17 points over 9 pairs is not equivalent within 2 points (p ≈ 0.20);
    energy +0.0175 ± 0.0302 is, within 0.05 (p ≈ 0.006)."""
    accuracy = with_moments(-0.00741, 0.0417, 9)
    assert t_test(accuracy).ci_low == pytest.approx(-0.0395, abs=5e-4)
    assert t_test(accuracy).ci_high == pytest.approx(0.0246, abs=5e-4)
    assert margin_test(accuracy, 0.02).p_value == pytest.approx(0.195, abs=5e-3)
    assert margin_test(with_moments(0.0175, 0.0302, 9), 0.05).p_value == pytest.approx(0.006, abs=1e-3)


def test_non_inferiority_asks_one_side_only():
    gain = margin_test(with_moments(0.044, 0.01, 6), 0.02, band="non-inferiority")  # a gain is not a loss
    assert gain.inside and gain.p_value < 1e-4
    assert margin_test(with_moments(0.044, 0.01, 6), 0.02).inside is False  # for equivalence it is too large
    loss = margin_test(with_moments(-0.1, 0.01, 6), 0.02, band="non-inferiority")
    assert not loss.inside and loss.p_value < 1e-4
    with pytest.raises(ValueError, match="unknown band"):
        margin_test([1.0, 2.0], 0.1, band="superiority")


def test_holm_adjusts_in_step_down_order():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # Bonferroni would keep only the first below 0.05 (0.03, 0.06, 0.09); Holm's steps reject all three.
    assert (holm([0.01, 0.02, 0.03]) < 0.05).all()
    adjusted = holm([0.2, np.nan, 0.001])  # NaN is no test: m = 2
    assert adjusted[0] == pytest.approx(0.2) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.002)
    assert holm([0.3, 0.2]) == pytest.approx([0.4, 0.4]) and holm([]).size == 0  # 0.3 never below 0.2·2


@pytest.mark.parametrize("effect", [1.0, 2.5])
def test_a_true_effect_is_found_at_the_seeds_n_needed_names(effect):
    """Simulated: at n_needed(d) seeds a true standardized effect d is found about `power` of the time, at
    n − 1 seeds less often; a null is found about α of the time."""
    level, rng = 0.05 / 20, np.random.default_rng(0)
    n = int(n_needed(effect, 1.0, level))

    def found(mean: float, seeds: int) -> float:
        draws = rng.normal(mean, 1.0, size=(4000, seeds))
        t = draws.mean(1) / (draws.std(1, ddof=1) / math.sqrt(seeds))
        return float((2 * student_t.sf(np.abs(t), seeds - 1) < level).mean())

    assert 0.77 <= found(effect, n) <= 0.86 and found(effect, n - 1) < 0.8
    assert found(0.0, n) < 3 * level


def test_n_needed_for_margin_tests_and_edge_cases():
    tost = int(n_needed(0.0, 1.0, 0.05, margin=1.0))
    rng = np.random.default_rng(1)
    equivalent = [margin_test(rng.normal(0.0, 1.0, tost), 1.0).p_value < 0.05 for _ in range(2000)]
    assert 0.8 <= np.mean(equivalent) <= 0.9  # the bound P(A) + P(B) − 1 errs towards more seeds
    assert n_needed(0.0, 1.0, 0.05) != n_needed(0.0, 1.0, 0.05)  # no direction to find: NaN
    assert n_needed(3.0, 0.0, 0.05) == 2 and n_needed(1e-6, 1.0, 0.05) == math.inf
    assert n_needed(-1.0, 1.0, 0.05) == n_needed(1.0, 1.0, 0.05)  # a negative effect is found alike
    assert n_needed(-1.0, 1.0, 0.05, margin=0.5, band="non-inferiority") < math.inf  # inferiority shown


def test_n_needed_falls_as_the_effect_grows():
    """Far in the tail scipy's noncentral t cdf is NaN; a NaN power must not pass over an n that suffices."""
    level = 0.05 / 70
    needed = [n_needed(d, 1.0, level) for d in np.linspace(0.5, 30, 60)]
    assert all(a >= b for a, b in zip(needed, needed[1:]))
    assert n_needed(5.3, 1.0, level) == 5 and n_needed(-5.3, 1.0, level) == 5
    # inferiority, δ < −m, is one-sided: the directional test of δ + m at twice the level
    assert n_needed(-1.0, 1.0, level, margin=0.2, band="non-inferiority") == n_needed(-0.8, 1.0, 2 * level)
